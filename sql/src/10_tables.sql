------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE dispatch.nodes (
    node            text PRIMARY KEY
                    CHECK (node ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$'),
    state           text NOT NULL DEFAULT 'online'
                    CHECK (state IN ('online', 'offline', 'draining')),
    owner           name NOT NULL,
    hostname        text,
    arch            text,
    os              text,
    cpus            int,
    memory_mb       bigint,
    labels          jsonb NOT NULL DEFAULT '{}'
                    CHECK (pg_catalog.jsonb_typeof(labels) = 'object'),
    agent_version   text,
    agent_pid       int,
    registered_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_heartbeat  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    state_changed_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE dispatch.nodes IS 'Worker machines, registered by their agents';

CREATE TABLE dispatch.resources (
    resource_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type            text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]{0,62}$'),
    ident           text NOT NULL
                    CHECK (ident ~ '^[^\s,]{1,200}$'),
    node            text REFERENCES dispatch.nodes ON DELETE CASCADE,
    capacity        bigint NOT NULL DEFAULT 1 CHECK (capacity > 0),
    is_amount       boolean NOT NULL DEFAULT false,
    from_agent      boolean NOT NULL DEFAULT false,
    added_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE NULLS NOT DISTINCT (type, ident, node),
    CHECK (is_amount OR capacity = 1)
);
COMMENT ON TABLE dispatch.resources IS
    'Resource instances: node-local (node set) or cluster-wide pools (node NULL); amount resources have a capacity';

CREATE TABLE dispatch.joblists (
    joblist_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    fail_fast       boolean NOT NULL DEFAULT true,
    current_stage   int NOT NULL DEFAULT 0,
    stage_count     int NOT NULL CHECK (stage_count > 0),
    spec            jsonb NOT NULL,
    submitted_by    name NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    reason          text,
    CHECK (current_stage >= 0 AND current_stage < stage_count),
    CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX joblists_name_idx ON dispatch.joblists (name);
CREATE INDEX joblists_active_idx ON dispatch.joblists (joblist_id)
    WHERE state IN ('queued', 'running');
COMMENT ON TABLE dispatch.joblists IS 'Submitted joblists: ordered stages of parallel jobs';

CREATE TABLE dispatch.stages (
    joblist_id      bigint NOT NULL REFERENCES dispatch.joblists ON DELETE CASCADE,
    stage           int NOT NULL CHECK (stage >= 0),
    name            text NOT NULL,
    PRIMARY KEY (joblist_id, stage),
    UNIQUE (joblist_id, name)
);
COMMENT ON TABLE dispatch.stages IS 'Stages of each joblist, numbered from 0';

CREATE TABLE dispatch.jobs (
    job_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    joblist_id      bigint NOT NULL,
    stage           int NOT NULL,
    name            text NOT NULL,
    command         text NOT NULL,
    needs           jsonb NOT NULL,
    constraints     jsonb NOT NULL DEFAULT '{}',
    env             jsonb NOT NULL DEFAULT '{}',
    timeout         interval CHECK (timeout > '0'),
    retries         int NOT NULL DEFAULT 0 CHECK (retries >= 0),
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'assigned', 'running', 'succeeded',
                                     'failed', 'cancelled', 'lost')),
    attempt         int NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    node            text REFERENCES dispatch.nodes,
    resources       jsonb,
    reason          text,
    exit_code       int,
    signal          int,
    timed_out       boolean NOT NULL DEFAULT false,
    cancel_requested boolean NOT NULL DEFAULT false,
    assigned_at     timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    output_bytes    bigint NOT NULL DEFAULT 0,
    output_truncated boolean NOT NULL DEFAULT false,
    FOREIGN KEY (joblist_id, stage) REFERENCES dispatch.stages ON DELETE CASCADE,
    UNIQUE (joblist_id, name),
    CHECK (state NOT IN ('assigned', 'running') OR node IS NOT NULL),
    CHECK (state <> 'pending' OR node IS NULL),
    CHECK ((state IN ('succeeded', 'failed', 'cancelled', 'lost')) = (finished_at IS NOT NULL))
);
CREATE INDEX jobs_pending_idx ON dispatch.jobs (joblist_id, job_id) WHERE state = 'pending';
CREATE INDEX jobs_stage_idx ON dispatch.jobs (joblist_id, stage);
CREATE INDEX jobs_active_node_idx ON dispatch.jobs (node) WHERE state IN ('assigned', 'running');
COMMENT ON TABLE dispatch.jobs IS 'Jobs; attempt grows each time a job is retried';

CREATE TABLE dispatch.allocations (
    resource_id     bigint NOT NULL REFERENCES dispatch.resources,
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    amount          bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (resource_id, job_id)
);
CREATE INDEX allocations_job_idx ON dispatch.allocations (job_id);
COMMENT ON TABLE dispatch.allocations IS 'Resources held by assigned and running jobs';

CREATE TABLE dispatch.job_events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    attempt         int NOT NULL,
    state           text NOT NULL,
    node            text,
    detail          text,
    at              timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE INDEX job_events_job_idx ON dispatch.job_events (job_id);
COMMENT ON TABLE dispatch.job_events IS 'History of every job state change';

CREATE TABLE dispatch.job_output (
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    attempt         int NOT NULL,
    stream          text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    "offset"        bigint NOT NULL CHECK ("offset" >= 0),
    data            text NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (job_id, attempt, stream, "offset")
);
COMMENT ON TABLE dispatch.job_output IS
    'Job output in chunks at byte offsets, stored while the job runs';

CREATE TABLE dispatch.job_files (
    job_id          bigint NOT NULL REFERENCES dispatch.jobs ON DELETE CASCADE,
    path            text NOT NULL,
    mode            text NOT NULL CHECK (mode ~ '^0[0-7]{3}$'),
    template        boolean NOT NULL,
    content         text NOT NULL,
    bytes           bigint GENERATED ALWAYS AS (pg_catalog.octet_length(content)) STORED,
    PRIMARY KEY (job_id, path)
);
COMMENT ON TABLE dispatch.job_files IS
    'Files of each job as rendered at submit time; the agent writes them into the work directory';
