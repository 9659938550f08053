-- A sink's offset belongs to one stream: the stream's creation time (JetStream's `created`) is kept
-- with it, so a recreated stream, or another bus with the same stream name, is recognised whatever
-- its length; and the bus time of the last message written, so a gap of expired messages can say
-- since when. Rows from before this migration have neither (the sink then treats the stream as new
-- only if it is shorter than the offset, as before).
ALTER TABLE ticklake_sink_offsets ADD COLUMN stream_created text;
ALTER TABLE ticklake_sink_offsets ADD COLUMN last_time_ns bigint;
