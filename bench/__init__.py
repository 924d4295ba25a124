"""Side-by-side benchmarks of orderlake (``make bench``, ``python -m bench [--quick|--smoke]``).

Why ratios only: the machines these run on are shared and noisy, so a bare number of seconds says little. Every
claim is a ratio of two figures measured in the same run, on the same data, one right after the other. The
scenarios (P1..P5, issue 6) use deterministic sandbox accounts and seeded generators, so two runs measure the same
work.
"""
