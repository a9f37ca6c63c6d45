#!/bin/sh
# The issue-15 estimation benchmarks in one run, old code beside new (JSON lines; load averages between steps).
#   sh benchmarks/nlme_issue15.sh /tmp/pkpd_before > benchmarks/results/cpu2_<date>_issue15_after.jsonl
# BEFORE: an export of the code before issue 15 (git archive 7987f23 | tar -x -C /tmp/pkpd_before).
BEFORE=${1:-/tmp/pkpd_before}
PY=${PYTHON:-.venv/bin/python}
load() { echo "{\"uptime\": \"$(uptime)\"}"; }
load
$PY benchmarks/nlme.py --method focei fo --repeat 5
[ -d "$BEFORE" ] && $PY benchmarks/nlme.py --method focei --repeat 1 --pkpd-path "$BEFORE"
load
$PY benchmarks/nlme_msc.py --n 20 100 1000 --method focei --timeout 900 --label after
load
$PY benchmarks/nlme_msc.py --n 20 100 --method fo laplace --timeout 900 --label after
load
$PY benchmarks/nlme_msc.py --n 100 --method focei --threads 1 2 --timeout 900 --label "after, threads"
load
$PY benchmarks/nlme_threads.py --n 100 --repeat 2
load
