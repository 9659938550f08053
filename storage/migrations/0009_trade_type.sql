-- What kind of print a trade is where it is not an ordinary market trade (block, liquidation,
-- insurance_fund, adl, unknown; normalize/records.py Trade.trade_type); null for a market trade.
ALTER TABLE trade ADD COLUMN trade_type text;
