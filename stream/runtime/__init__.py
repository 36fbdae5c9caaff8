"""The seam between riskpulse and faust-streaming: the only package that imports faust, and the
only one that touches faust's or aiokafka's private state (an import-linter contract keeps the
stages off faust). docs/stream.md lists each repair made here with the upstream issue it works
around; versions.py refuses releases the repairs were not tested on.

    app.py             the faust app, its held topics and partitioned state tables
    worker.py          Runtime: stages to agents, the heartbeat, logs, the web pages
    driver.py          one stage as one agent: batches in offset order, held until processed
    outputs.py         the stages' output port over the app's topics
    passed_over.py     records faust fetched and never handed over, read and put in place
    commits.py         faust's commit bookkeeping, corrected for the topics read in full
    livelock.py        faust's livelock check, kept from crashing the consumer
    handover.py        records handed to the agents without four tasks a record
    broker_offsets.py  offsets and records asked on a Kafka client of the worker's own
    watches.py         stalls, blocked agents, orphaned partitions, lagging commits: act or say so
    watchdog.py        the watches' decisions, plain code
    supervisor.py      the worker as a child process, restarted when it dies
    versions.py        the faust-streaming and aiokafka releases the repairs know
"""
