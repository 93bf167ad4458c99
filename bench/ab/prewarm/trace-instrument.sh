#!/bin/sh
# Temporary trace points in a built dist/ (rebuild to remove them), for trace.mjs: CLOCK_MONOTONIC
# (process.hrtime) and CPU time on both sides of a prewarm activation. Patterns follow the code of round four.
set -e
cd ${1:-/work/wt/prewarm}
T='globalThis.__T ??= (() => { const buf = []; return (l) => { const u = process.cpuUsage(); buf.push(`${process.pid} ${process.hrtime.bigint()} ${l} @cpu=${u.user + u.system}`); if (l === "H reply" || l.startsWith("B") || l.startsWith("M")) { process.getBuiltinModule("node:fs").appendFileSync("/tmp/bulkhead-prewarm-trace.log", buf.join("\\n") + "\\n"); buf.length = 0; } }; })();'
B=dist/lib/service.bundle.js
sed -i "1a $T" $B
L=$(grep -n 'this.channel.send({ kind: "reply", id: id2, result }, noLargeBytes);' $B | cut -d: -f1); sed -i "${L}i globalThis.__T?.(\"H reply\");" $B
L=$(grep -n 'if (!this.helloSeen)$' $B | head -1 | cut -d: -f1); sed -i "${L}i globalThis.__T?.(\"H call\");" $B
L=$(grep -n 'const verdict = judgePeerHello(this.protocol, "service", envelope' $B | head -1 | cut -d: -f1); sed -i "${L}i globalThis.__T?.(\"H bhello\");" $B
grep -n 'const server = new RpcServer' $B | head -1
L=$(grep -n 'const server = new RpcServer' $B | cut -d: -f1)
sed -i "${L}i globalThis.__T?.(\"H startServer\");" $B
P=dist/lib/prewarm.js
sed -i "1a $T" $P
sed -i "s/^socket.on(.data., function onData(chunk) {/&\nglobalThis.__T?.(\"H data \" + chunk.length);/" $P
sed -i 's/^const warm = /globalThis.__T?.("H imported");\n&/' $P
H=dist/lib/broker/helper-process.js
sed -i 's/^            envelope: (e, body) => {/&\nglobalThis.__T?.("B recv " + e.kind);/' $H
sed -i 's/^            closed: (error) => {/&\nglobalThis.__T?.("B chan closed");/' $H
sed -i 's/^    activate() {/&\nglobalThis.__T?.("B activate");/' $H
sed -i 's/^    onExit(code, signal, resolve) {/&\nglobalThis.__T?.("B exit evt");/' $H
sed -i 's/^    kill(signal = .SIGKILL.) {/&\nglobalThis.__T?.("B kill " + signal);/' $H
grep -c '__T' $B $P $H
sed -i "s/^        if (socket === null || socket === undefined)/socket.once('end', () => globalThis.__T?.('B eof'));\n&/" $H
sed -i 's/^    async launch() {/&\nglobalThis.__T?.("B launch");/' dist/lib/broker/service-lifecycle.js
grep -c '__T' $H dist/lib/broker/service-lifecycle.js
sed -i 's/^  fields\[kBufferCb\] = (n, buffer) => {/&\nglobalThis.__T?.("H read " + n);/' $B
grep -c '__T' $B
