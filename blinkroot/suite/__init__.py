"""`blinkroot suite`: run already-built conformance suites natively and under
blinkroot, and report the difference.

Suites (built by their own build systems, outside this repository):

- the Linux Test Project, from an install prefix (``testcases/bin`` and
  ``runtest/syscalls``, as LTP's ``make install`` lays them out);
- musl's libc-test, from a built tree (``src/*/NAME.exe`` and
  ``src/*/NAME-static.exe``, as its Makefile builds them).

Modules: ``layouts`` finds the tests, ``runner`` runs them (and holds the one
list of machine-wide tests that run one at a time), ``report`` writes the
text report, JSON, JUnit XML, the expected-results list and the comparison
with a previous one, ``cli`` is the command line.
"""
