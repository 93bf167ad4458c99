#!/usr/bin/env python3
# `bulkhead ps --json` CPU, two builds alternating, each against a daemon of its own (round twelve, health12).
# usage: python3 bench/ab/cli-ps-cpu-ab.py <node> <runs> <rootA> <rootB>   (each root a built checkout)
import os, sys, json, subprocess, tempfile, statistics, shutil
node, runs, roots = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
setups = []
for root in roots:
    work = tempfile.mkdtemp(prefix='health12-ab-')
    open(os.path.join(work, 'bulkhead.json'), 'w').write(json.dumps({'root': work, 'services': []}))
    env = dict(os.environ, BULKHEAD_SOCKET=os.path.join(work, 'run', 'b.sock'), BULKHEAD_STATE_DIR=os.path.join(work, 'state'), NO_COLOR='1')
    cli = os.path.join(root, 'dist/lib/cli/main.js')
    d = subprocess.Popen([node, cli, 'daemon', '--config', os.path.join(work, 'bulkhead.json'), '--log-file', os.path.join(work, 'daemon.log')], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in d.stderr:
        if '"event":"listening"' in line: break
    setups.append(dict(root=root, work=work, env=env, cli=cli, daemon=d, cpu=[]))
def run(s):
    p = subprocess.Popen([node, s['cli'], 'ps', '--json'], env=s['env'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return (ru.ru_utime + ru.ru_stime) * 1000
for s in setups: run(s)
loads = []
for i in range(runs):
    order = setups if i % 2 == 0 else list(reversed(setups))
    for s in order: s['cpu'].append(run(s))
    loads.append(os.getloadavg()[0])
for s in setups:
    c = s['cpu']
    print(f"{s['root']}: CPU ms mean {statistics.mean(c):.1f} (sem {statistics.stdev(c)/len(c)**0.5:.1f}) median {statistics.median(c):.1f} [{min(c):.0f}-{max(c):.0f}]")
a, b = setups[0]['cpu'], setups[1]['cpu']
d = [y - x for x, y in zip(a, b)]
print(f"paired B-A: mean {statistics.mean(d):+.1f} ms (sem {statistics.stdev(d)/len(d)**0.5:.1f}), median {statistics.median(d):+.1f}; load {min(loads):.1f}-{max(loads):.1f}")
for s in setups:
    s['daemon'].terminate(); s['daemon'].wait(timeout=10); shutil.rmtree(s['work'], ignore_errors=True)
