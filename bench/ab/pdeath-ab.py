#!/usr/bin/env python3
# python3 bench/ab/pdeath-ab.py ROUNDS [NODE]: the parent-death stage's cost per unsandboxed launch (issue 19).
# Interleaved, per round and variant one launch each of: bare node, node through dist/native/parent-death
# (the native stage), node through `setpriv --pdeathsig KILL --`; then the same three with /bin/true as the
# target (the stage's own cost without node's noise). Per launch: the child's CPU (user+sys, from wait4's
# rusage, which covers the stage and the node it execs: one process) and wall (spawn to reaped).
# Prints medians and the median of per-round differences against bare. Run from the repo root after `npm run build`.
import os, statistics, sys, time

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
node = sys.argv[2] if len(sys.argv) > 2 else 'node'
node = node if '/' in node else next(os.path.join(p, node) for p in os.environ['PATH'].split(':') if os.access(os.path.join(p, node), os.X_OK))
stage = os.path.abspath('dist/native/parent-death')
setpriv = '/usr/bin/setpriv'
me = str(os.getpid())

def variants(target):
    return {
        'bare': target,
        'native': [stage, me] + target,
        'setpriv': [setpriv, '--pdeathsig', 'KILL', '--'] + target,
        # PDEATH_ALT=path: another build of the same stage (e.g. linked with libc, statically or dynamically), to compare.
        **({'alt': [os.environ['PDEATH_ALT'], me] + target} if os.environ.get('PDEATH_ALT') else {}),
    }

def once(argv):
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter() - start) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f'{argv} failed: {status}')
    return (ru.ru_utime + ru.ru_stime) * 1000, wall

for label, target in (('node -e 0', [node, '-e', '0']), ('/bin/true', ['/bin/true'])):
    vs = variants(target)
    cpu = {k: [] for k in vs}
    wall = {k: [] for k in vs}
    for _ in range(rounds):
        for k, argv in vs.items():
            c, w = once(argv)
            cpu[k].append(c)
            wall[k].append(w)
    print(f'target {label}, {rounds} interleaved rounds, load {os.getloadavg()[0]:.1f}, node {node}')
    for k in vs:
        dc = [a - b for a, b in zip(cpu[k], cpu['bare'])]
        dw = [a - b for a, b in zip(wall[k], wall['bare'])]
        print(f'  {k:8} cpu median {statistics.median(cpu[k]):7.3f} ms (vs bare {statistics.median(dc):+.3f}, mean {statistics.mean(dc):+.3f})'
              f'  wall median {statistics.median(wall[k]):7.3f} ms (vs bare {statistics.median(dw):+.3f})')
