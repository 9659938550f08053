"""One module per venue: wire Structs and pure functions from raw frames to contract records."""
