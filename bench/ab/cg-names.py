# python3 bench/ab/cg-names.py CALLGRIND_DUMP PERF_MAP [N_CALLS] [ROWS]
# Self instructions by function in a callgrind dump of node (bench/ab/cg-window.sh), per call: builtins and C++ by
# their symbols, JIT code named from node's --perf-basic-prof map (callgrind sees only its addresses).
import bisect, collections, re, sys
out, mapf = sys.argv[1], sys.argv[2]
ncalls = float(sys.argv[3]) if len(sys.argv) > 3 else 1
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 60
ents = sorted((int(a, 16), int(s, 16), n) for a, s, n in (l.rstrip('\n').split(' ', 2) for l in open(mapf)))
starts = [e[0] for e in ents]
def name_of(key):
    m = re.match(r'^0x([0-9a-f]+)', key)
    if m:
        a = int(m.group(1), 16)
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and a < ents[i][0] + ents[i][1]:
            return 'JIT ' + re.sub(r'file://.*/dist/', '', ents[i][2])
        return 'JIT ?'
    return re.sub(r"'\d+$", '', key)
names, selfc = {}, collections.Counter()
cur, skip_next = None, False
for line in open(out):
    line = line.rstrip('\n')
    m = re.match(r'^(c?fn)=\((\d+)\)(?: (.*))?$', line)
    if m:
        if m.group(3) is not None:
            names[m.group(2)] = m.group(3)
        if m.group(1) == 'fn':
            cur, skip_next = m.group(2), False
        continue
    if line.startswith('calls='):
        skip_next = True  # the next cost line is the call's inclusive cost
        continue
    if line[:1].isdigit() or line[:1] in '+-*':
        parts = line.split()
        if skip_next:
            skip_next = False
        elif len(parts) >= 2 and cur is not None:
            selfc[cur] += int(parts[1])
total = sum(selfc.values())
agg = collections.Counter()
for k, v in selfc.items():
    agg[name_of(names.get(k, k))] += v
print(f'total {total:,}  per call {total / ncalls:,.0f}')
for k, v in agg.most_common(rows):
    print(f'{v / ncalls:9.0f} {100 * v / total:5.1f}%  {k[:150]}')
