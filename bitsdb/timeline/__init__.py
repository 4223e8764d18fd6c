"""Timeline events: the one vocabulary every timeline format (Timesketch, bodyfile, ECS, CSV) is written from.

    jobs   events of job and file records (database, legacy, recovered versions)
    logs   events of event-log records, process evidence and the BITS service key
"""
