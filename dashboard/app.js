// bulkhead Activity Monitor: plain browser JavaScript, no framework, no build
// step, nothing loaded from elsewhere. Live data arrives over server-sent
// events from /events (a snapshot per second, log entries as they come).
// Everything a helper printed is untrusted text: it is only ever set with
// textContent, never parsed as HTML.
'use strict';
(() => {
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const HISTORY_MS = 5 * 60 * 1000; // charts: the last five minutes
  const TIMELINE_MS = 10 * 60 * 1000;
  const MAX_LOG = 1000;
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const history = new Map(); // service → [{ t, cpu, rss }]
  const rows = new Map(); // service → row elements
  let timeline = [];
  let logEntries = [];
  let daemon = null;
  let admin = false;
  let serverSkew = 0;

  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
    return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
  }
  function bytes(n) {
    if (n === null || n === undefined) return '-';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }
  function exitText(e) {
    if (!e) return '-';
    const how = e.signal ? e.signal : `exit ${e.code}`;
    return e.reason ? `${how} (${e.reason})` : how;
  }

  // A small area chart of one series over the last HISTORY_MS.
  function sparkline(samples, key, cls, now, floor) {
    const w = 140, h = 28;
    const chart = svg('svg', { class: 'spark', viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', 'aria-label': `${key} history` });
    const points = samples.filter((s) => s[key] !== null && s[key] !== undefined);
    if (points.length === 0) return chart;
    // The x axis spans the history we have (a minute at least), up to HISTORY_MS.
    const span = Math.min(HISTORY_MS, Math.max(60000, now - samples[0].t));
    const max = Math.max(floor, ...points.map((s) => s[key]));
    const xy = points.map((s) => [((s.t - (now - span)) / span) * w, h - 1 - (s[key] / max) * (h - 3)]);
    const line = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    chart.append(svg('path', { class: cls, d: `M${xy[0][0].toFixed(1)},${h} L${line.replace(/ /g, ' L')} L${xy[xy.length - 1][0].toFixed(1)},${h} Z` }));
    chart.append(svg('polyline', { class: cls, points: line }));
    const title = svg('title');
    title.textContent = `max ${key === 'rss' ? bytes(max) : `${max.toFixed(1)}%`} over the last ${Math.round(span / 60000)} min`;
    chart.append(title);
    return chart;
  }

  async function act(action, service) {
    const res = await fetch(`/api/${action}?service=${encodeURIComponent(service)}&token=${encodeURIComponent(token)}`, { method: 'POST' });
    if (!res.ok) alert(`${action} ${service}: ${await res.text()}`);
  }

  function rowFor(name) {
    let row = rows.get(name);
    if (row) return row;
    const tr = el('tr', { class: 'service', 'data-service': name });
    const cells = {};
    for (const key of ['name', 'state', 'pid', 'uptime', 'cpu', 'cpuChart', 'rss', 'rssChart', 'launches', 'crashes', 'lastExit', 'actions']) {
      cells[key] = el('td', { class: key });
      tr.append(cells[key]);
    }
    cells.name.textContent = name;
    cells.actions.classList.add('admin-only');
    for (const action of ['kickstart', 'restart', 'stop']) {
      const button = el('button', { type: 'button', 'data-action': action }, action);
      button.addEventListener('click', () => void act(action, name));
      cells.actions.append(button);
    }
    $('services').tBodies[0].append(tr);
    const option = el('option', { value: name }, name);
    $('log-service').append(option);
    row = { tr, cells };
    rows.set(name, row);
    return row;
  }

  function onSnapshot(snapshot) {
    serverSkew = snapshot.time - Date.now();
    const now = snapshot.time;
    const seen = new Set();
    for (const s of snapshot.services) {
      seen.add(s.name);
      const samples = history.get(s.name) ?? [];
      samples.push({ t: now, cpu: s.pid === null ? null : s.cpuPercent, rss: s.pid === null ? null : s.rssBytes });
      while (samples.length > 0 && samples[0].t < now - HISTORY_MS) samples.shift();
      history.set(s.name, samples);
      const { tr, cells } = rowFor(s.name);
      // The row carries what `ps` prints: name, state, and the pid or "-".
      const pid = s.pid === null ? '-' : String(s.pid);
      tr.dataset.pid = pid;
      tr.dataset.state = s.state;
      cells.state.textContent = s.state;
      cells.state.className = `state state-${s.state}`;
      cells.pid.textContent = pid;
      cells.uptime.textContent = s.pid === null || s.startedAt === null ? '-' : duration(now - s.startedAt);
      cells.cpu.textContent = s.cpuPercent === null ? '-' : s.cpuPercent.toFixed(1);
      cells.rss.textContent = bytes(s.rssBytes);
      cells.cpuChart.replaceChildren(sparkline(samples, 'cpu', 'cpu', now, 5));
      cells.rssChart.replaceChildren(sparkline(samples, 'rss', 'mem', now, 32 * 1024 * 1024));
      cells.launches.textContent = String(s.launches);
      cells.crashes.textContent = String(s.crashes);
      cells.lastExit.textContent = exitText(s.lastExit);
      cells.lastExit.title = exitText(s.lastExit);
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) { row.tr.remove(); rows.delete(name); }
    }
    renderSandbox(snapshot.services);
    renderTimeline(now);
    if (daemon) $('daemon').textContent = `daemon pid ${daemon.pid} · up ${duration(now - daemon.startedAt)} · ${daemon.socketPath} · daemon RSS ${bytes(snapshot.daemon.rssBytes)}`;
  }

  let sandboxKey = '';
  const sandboxSeen = new Set();
  function renderSandbox(services) {
    const key = JSON.stringify(services.map((s) => [s.name, s.sandbox]));
    if (key === sandboxKey) return;
    sandboxKey = key;
    const box = $('sandbox');
    const open = new Set([...box.querySelectorAll('details[open]')].map((d) => d.dataset.service));
    box.replaceChildren();
    for (const s of services) {
      const details = el('details', { 'data-service': s.name });
      const summary = el('summary', {}, `${s.name}: ${s.sandbox === null ? 'not launched yet' : s.sandbox.profile === 'none' ? 'no sandbox profile (runs with the daemon\'s rights)' : `profile ${s.sandbox.profile}, ${s.sandbox.enforcement}`}`);
      details.append(summary);
      box.append(details);
      if (!s.sandbox || s.sandbox.rules.length === 0) continue;
      const unenforced = s.sandbox.rules.filter((r) => r.unenforced).length;
      summary.append(el('span', { class: 'count' }, ` — ${s.sandbox.rules.length - unenforced}/${s.sandbox.rules.length} rules enforced`));
      // Open what the user opened; when a report first appears, the first sandboxed service's and any with a rule not enforced.
      if (!sandboxSeen.has(s.name)) {
        sandboxSeen.add(s.name);
        if (sandboxSeen.size === 1 || unenforced > 0) open.add(s.name);
      }
      details.open = open.has(s.name);
      const table = el('table', { class: 'rules', 'data-service': s.name });
      const head = el('tr');
      for (const h of ['RULE', 'ENFORCED BY', 'STATUS', 'DETAIL']) head.append(el('th', {}, h));
      table.append(head);
      for (const rule of s.sandbox.rules) {
        const tr = el('tr');
        tr.append(el('td', {}, rule.rule), el('td', {}, rule.layers.join(', ') || '-'),
          el('td', { class: rule.unenforced ? 'unenforced' : 'enforced' }, rule.unenforced ? 'NOT ENFORCED' : 'enforced'),
          el('td', {}, rule.unenforced && rule.missing ? `${rule.detail ?? ''} — needs ${rule.missing}` : (rule.detail ?? '')));
        table.append(tr);
      }
      details.append(table);
    }
  }

  const timelineSeqs = new Set();
  function addTimeline(entries) {
    for (const e of entries) {
      const ev = e.data && e.data.event;
      if ((ev === 'launch' || ev === 'exit' || ev === 'failed' || ev === 'throttled') && !timelineSeqs.has(e.seq)) {
        timelineSeqs.add(e.seq);
        timeline.push(e);
      }
    }
    timeline.sort((a, b) => a.seq - b.seq);
    if (timeline.length > 2000) timeline = timeline.slice(-2000);
  }

  function renderTimeline(now) {
    const names = [...rows.keys()];
    const chart = $('timeline');
    const width = chart.clientWidth || 800;
    const lane = 22, left = 110, top = 6;
    const height = top + names.length * lane + 18;
    chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
    chart.style.height = `${height}px`;
    chart.replaceChildren();
    const x = (t) => left + ((t - (now - TIMELINE_MS)) / TIMELINE_MS) * (width - left - 10);
    names.forEach((name, i) => {
      const y = top + i * lane + lane / 2;
      const label = svg('text', { x: 4, y: y + 4 });
      label.textContent = name;
      chart.append(label, svg('line', { x1: left, x2: width - 10, y1: y, y2: y }));
    });
    for (let m = 0; m <= 10; m += 2) {
      const t = svg('text', { x: x(now - m * 60000) - 12, y: height - 4 });
      t.textContent = m === 0 ? 'now' : `-${m}m`;
      chart.append(t);
    }
    const list = $('events');
    list.replaceChildren();
    for (const e of timeline) {
      const i = names.indexOf(e.service);
      const ev = e.data.event;
      const crash = ev === 'failed' || (ev === 'exit' && e.data.requested === false);
      if (i >= 0 && e.time >= now - TIMELINE_MS) {
        const y = top + i * lane + lane / 2;
        const cx = x(e.time);
        const mark = ev === 'launch' ? svg('path', { class: 'launch', d: `M${cx - 5},${y + 5} L${cx},${y - 6} L${cx + 5},${y + 5} Z` }) : svg('circle', { class: crash ? 'crash' : 'stop', cx, cy: y, r: 4.5 });
        const title = svg('title');
        title.textContent = `${new Date(e.time).toLocaleTimeString()} ${e.service}: ${e.text}`;
        mark.append(title);
        chart.append(mark);
      }
    }
    for (const e of timeline.slice(-30).reverse()) {
      const ev = e.data.event;
      const crash = ev === 'failed' || (ev === 'exit' && e.data.requested === false);
      list.append(el('li', { class: crash ? 'crash' : '' }, `${new Date(e.time).toLocaleTimeString()} ${e.service ?? 'daemon'}${e.pid ? `[${e.pid}]` : ''}: ${e.text}`));
    }
  }

  function renderLog() {
    const service = $('log-service').value;
    const filter = $('log-filter').value.toLowerCase();
    const eventsOnly = $('log-events').checked;
    const pre = $('log');
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const lines = logEntries.filter((e) => (!service || e.service === service) && (!eventsOnly || e.stream === 'event') && (!filter || `${e.service} ${e.text}`.toLowerCase().includes(filter)));
    pre.replaceChildren(...lines.slice(-500).map((e) => el('span', { class: e.stream }, `${new Date(e.time).toLocaleTimeString()} ${e.service ?? 'daemon'}${e.pid ? `[${e.pid}]` : ''} ${e.stream}: ${e.text}\n`)));
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  function addLog(entries) {
    logEntries = logEntries.concat(entries);
    if (logEntries.length > MAX_LOG) logEntries = logEntries.slice(-MAX_LOG);
    addTimeline(entries);
    renderLog();
  }

  for (const id of ['log-service', 'log-filter', 'log-events']) $(id).addEventListener('input', renderLog);

  const source = new EventSource(`/events?token=${encodeURIComponent(token)}`);
  source.addEventListener('open', () => { $('link').className = 'link up'; });
  source.addEventListener('error', () => { $('link').className = 'link down'; });
  source.addEventListener('init', (message) => {
    const init = JSON.parse(message.data);
    admin = init.admin;
    document.body.classList.toggle('admin', admin);
    daemon = init.daemon;
    // A (re)connect starts over: a restarted daemon numbers its entries from 1 again.
    logEntries = [];
    timeline = [];
    timelineSeqs.clear();
    addTimeline(init.timeline);
    addLog(init.logs);
  });
  source.addEventListener('snapshot', (message) => onSnapshot(JSON.parse(message.data)));
  source.addEventListener('log', (message) => addLog(JSON.parse(message.data)));
  window.addEventListener('resize', () => renderTimeline(Date.now() + serverSkew));
})();
