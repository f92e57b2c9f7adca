"""The pieces of ``make bench`` (``scripts/bench.py``), one job per module.

- :mod:`.common`: paths, percentiles, the load average, progress lines;
- :mod:`.load`: the load generators (open and closed loop), the bare endpoint and the OTLP sink,
  each run in its own process;
- :mod:`.stack`: the native stack on free ports and the CPU time of its processes;
- :mod:`.checks`: what must hold after a run (every accepted request scheduled exactly once, no
  drone double-booked, nothing dead-lettered);
- :mod:`.runs`: the measurements (end to end, status reads, the HTTP client);
- :mod:`.past`: past, completed deliveries written into a stack's stores before a run;
- :mod:`.growth`: cost as work grows (workflow replicas, past deliveries), on fresh stacks;
- :mod:`.profiling`: py-spy and pprof profiles and their summaries;
- :mod:`.report`: the machine, the targets and the markdown table.
"""
