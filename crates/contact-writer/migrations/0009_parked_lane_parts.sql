-- Lane parts that reached the writer before their lane reached them, kept here until it does.
-- A part waits in a writer's memory for a moment; when its lane is still behind, it is parked
-- here and its message acknowledged, so that waiting parts never fill the writers' share of
-- the record stream and keep their predecessor from being delivered. Whichever transaction
-- moves the lane to a parked part's chunk applies it next (it sees the part under the lane's
-- row lock, which parking takes too).
CREATE TABLE parked_lane_parts (
    account_id   text COLLATE "C" NOT NULL,
    import_id    text COLLATE "C" NOT NULL,
    lane         integer NOT NULL,
    chunk_index  integer NOT NULL,
    -- The validated chunk as it came, with the records of this lane only (and, for lane 0,
    -- the chunk's row errors and failed rows): JSON, read back by the writer that applies it.
    part         bytea NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, import_id, lane, chunk_index)
);
