// clonecd fleet page: the fleet (/, /admin/) and a node (/node/NAME).
// Live through the server's event stream (/api/events), else by polling
// /api/fleet. Everything the server sends is put on the page as text
// (textContent), never as markup.
'use strict';
(() => {
  const body = document.body;
  const page = body.dataset.page;
  const admin = body.dataset.admin === 'true';
  const base = body.dataset.base || '';
  const params = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);

  // h builds an element; strings among kids become text nodes.
  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids) if (kid != null) e.append(kid);
    return e;
  }
  function setText(id, s) { const e = $(id); if (e) e.textContent = s; }

  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(n) {
    if (n == null) return '–';
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
  }
  const rate = (bps) => (bps > 0 ? bytes(Math.round(bps)) + '/s' : '–');
  const date = (s) => (s ? new Date(s) : null);
  function dur(sec) {
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return sec + 's';
    if (sec < 3600) return Math.floor(sec / 60) + 'm' + String(sec % 60).padStart(2, '0') + 's';
    return Math.floor(sec / 3600) + 'h' + String(Math.floor((sec % 3600) / 60)).padStart(2, '0') + 'm';
  }
  function ago(s) { const d = date(s); return d ? dur((Date.now() - d.getTime()) / 1000) + ' ago' : '–'; }
  function when(s) { const d = date(s); return d ? d.toLocaleString() : '–'; }
  const natural = (a, b) => a.localeCompare(b, undefined, { numeric: true });
  const nodeURL = (n) => base + '/node/' + encodeURIComponent(n);

  // The fleet as the server last described it.
  const fleet = { nodes: new Map(), versions: [], current: '', streams: null, newcomers: null,
    reclone: body.dataset.reclone === 'true' };

  let renderQueued = false;
  function changed() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => { renderQueued = false; render(); }, 30);
  }
  const render = page === 'node' ? renderNodePage : renderFleet;

  function applyOverview(ov) {
    fleet.nodes = new Map(ov.nodes.map((n) => [n.node, n]));
    fleet.versions = ov.versions;
    fleet.current = ov.current;
    fleet.streams = ov.streams;
    fleet.newcomers = ov.newcomers;
    fleet.reclone = ov.reclone;
    changed();
  }

  // --- live: the event stream, else polling ---------------------------
  function setConn(state, label) { const c = $('conn'); c.dataset.state = state; c.textContent = label; }
  let pollTimer = null;
  function startPolling(why) {
    if (pollTimer) return;
    const label = 'polling (' + why + ')';
    const tick = async () => {
      try {
        const r = await fetch('/api/fleet', { cache: 'no-store', credentials: 'same-origin' });
        if (!r.ok) throw new Error(r.status + ' ' + r.statusText);
        applyOverview(await r.json());
        setConn('polling', label);
      } catch (e) {
        setConn('offline', 'offline: ' + e.message);
      }
    };
    setConn('polling', label);
    tick();
    pollTimer = setInterval(tick, 2000);
  }
  function connect() {
    if (params.has('poll')) return startPolling('asked');
    if (!('EventSource' in window)) return startPolling('no EventSource');
    const es = new EventSource('/api/events');
    let opened = false;
    let failures = 0;
    es.onopen = () => { opened = true; failures = 0; setConn('live', 'live'); };
    es.onerror = () => {
      failures++;
      if (es.readyState === EventSource.CLOSED || (!opened && failures >= 2)) {
        es.close();
        startPolling('no event stream');
        return;
      }
      setConn('offline', 'reconnecting…');
    };
    const on = (name, fn) => es.addEventListener(name, (e) => { fn(JSON.parse(e.data)); changed(); });
    on('overview', applyOverview);
    on('nodes', (list) => { for (const n of list) fleet.nodes.set(n.node, n); });
    on('gone', (list) => { for (const n of list) fleet.nodes.delete(n); });
    on('versions', (v) => { fleet.versions = v.versions; fleet.current = v.current; fleet.reclone = v.reclone; });
    on('streams', (s) => { fleet.streams = s; });
    on('newcomers', (n) => { fleet.newcomers = n; });
  }

  // --- pieces shared by both pages ------------------------------------
  function progressBar(big) {
    const fill = h('div', { class: 'fill' });
    const label = h('span', { class: 'label' });
    const el = h('div', { class: 'bar' + (big ? ' big' : ''), role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, fill, label);
    return { el, fill, label, big };
  }
  function setBar(b, n) {
    let pct = n.percent;
    let label;
    if (n.state === 'done') { pct = 100; label = 'done'; }
    else if (n.state === 'failed') { pct = pct >= 0 ? pct : 100; label = 'failed' + (n.step ? ' at ' + n.step : ''); }
    else if (n.state === 'waiting') { pct = 0; label = n.detail || 'waiting'; }
    else if (pct >= 0) { label = pct + '%' + (n.step && n.step !== 'unpack' ? ' · ' + n.step : ''); }
    else { pct = 0; label = n.step || n.state; }
    b.el.className = 'bar ' + n.state + (b.big ? ' big' : '');
    b.fill.style.width = pct + '%';
    b.el.setAttribute('aria-valuenow', String(pct));
    b.label.textContent = label;
  }
  function stepText(n) {
    if (!n.step) return '–';
    if (n.state === 'cloning' && n.stepStarted) return n.step + ' (' + dur((Date.now() - date(n.stepStarted)) / 1000) + ')';
    return n.step;
  }
  function versionText(n) {
    let v = n.version || '–';
    if (n.assigned && n.assigned !== n.version) v += ' → ' + n.assigned + ' (pinned)';
    else if (n.assigned) v += ' (pinned)';
    return v;
  }
  function renderHeader() {
    setText('current', 'current ' + (fleet.current || 'none'));
  }

  function toast(msg, isError) {
    const t = $('toast');
    t.textContent = msg;
    t.className = isError ? 'error' : '';
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { t.hidden = true; }, isError ? 12000 : 5000);
  }

  // --- admin actions ---------------------------------------------------
  // confirm asks in the page's dialog; it resolves to null when cancelled.
  function confirmDialog(o) {
    const d = $('confirm');
    setText('confirm-title', o.title);
    setText('confirm-text', o.text);
    const cmd = $('confirm-cmd');
    cmd.hidden = !o.command;
    cmd.textContent = o.command || '';
    $('confirm-reason-row').hidden = !o.reason;
    $('confirm-reason').value = '';
    $('confirm-force-row').hidden = !o.force;
    $('confirm-force').checked = false;
    const ok = $('confirm-ok');
    ok.hidden = !!o.infoOnly;
    ok.textContent = o.ok || 'Confirm';
    setText('confirm-cancel', o.infoOnly ? 'Close' : 'Cancel');
    d.returnValue = '';
    return new Promise((resolve) => {
      d.addEventListener('close', () => {
        resolve(d.returnValue === 'ok' ? { reason: $('confirm-reason').value, force: $('confirm-force').checked } : null);
      }, { once: true });
      d.showModal();
    });
  }
  async function post(action, req) {
    try {
      const r = await fetch('/admin/api/' + action, { method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req) });
      const ct = r.headers.get('Content-Type') || '';
      const res = ct.includes('application/json') ? await r.json() : { message: (await r.text()).trim() };
      res.ok = r.ok;
      res.status = r.status;
      return res;
    } catch (e) {
      return { ok: false, message: e.message };
    }
  }
  async function act(action, req, dialog) {
    const answer = await confirmDialog(dialog);
    if (!answer) return;
    if (dialog.reason) req.reason = answer.reason;
    if (dialog.force) req.force = answer.force;
    const res = await post(action, req);
    if (res.command && !res.ok) {
      confirmDialog({ title: dialog.title, text: res.message, command: res.command, infoOnly: true });
      return;
    }
    toast(res.message || (res.ok ? 'done' : 'failed'), !res.ok);
  }
  function versionByName(v) { return fleet.versions.find((x) => x.version === v); }
  function versionActions(v) {
    const b = (label, fn) => h('button', { type: 'button', text: label, 'data-action': label, on: { click: fn } });
    const out = [];
    if (v.status === 'current') {
      out.push(b('Rollback…', () => act('rollback', {}, { title: 'Roll back ' + v.version + '?',
        text: 'Marks ' + v.version + ' bad and makes the previous good version current. Nodes recloned from now on get that one.',
        reason: true, ok: 'Roll back' })));
    } else {
      out.push(b('Promote…', () => act('promote', { version: v.version }, { title: 'Make ' + v.version + ' current?',
        text: 'Nodes recloned from now on get ' + v.version + '.', force: v.status === 'bad', ok: 'Promote' })));
    }
    if (v.status === 'bad') {
      out.push(b('Mark good…', () => act('good', { version: v.version }, { title: 'Clear the bad mark of ' + v.version + '?',
        text: v.version + ' may then be promoted and assigned again.', ok: 'Mark good' })));
    } else {
      out.push(b('Mark bad…', () => act('bad', { version: v.version }, { title: 'Mark ' + v.version + ' bad?',
        text: 'A bad version is never rolled back to, nor promoted or assigned without force.', reason: true, ok: 'Mark bad' })));
    }
    return h('div', { class: 'actions' }, ...out);
  }
  function fillVersionSelect() {
    const sel = $('assign-version');
    if (!sel) return;
    const keep = sel.value;
    sel.replaceChildren(h('option', { value: '', text: 'current (' + (fleet.current || 'none') + ') / no pin' }));
    for (const v of fleet.versions.slice().reverse()) {
      sel.append(h('option', { value: v.version, text: v.version + ' · ' + v.status }));
    }
    sel.value = [...sel.options].some((o) => o.value === keep) ? keep : '';
  }
  function nodeActions(selected) {
    const list = () => selected().join(' ');
    const none = () => { if (!selected().length) { toast('select nodes first', true); return true; } return false; };
    const version = () => $('assign-version').value;
    $('act-reclone').addEventListener('click', () => {
      if (none()) return;
      const nodes = selected();
      const v = version();
      const what = nodes.length === 1 ? nodes[0] : nodes.length + ' nodes';
      if (!fleet.reclone) {
        let cmd = 'clonecd reclone --server ' + location.origin;
        if (v) cmd += ' --version ' + v;
        confirmDialog({ title: 'Reclone ' + what, infoOnly: true, command: cmd + ' ' + list(),
          text: 'This server was started without a remote shell (serve --rsh), so it does not reach the nodes itself. Run on the master:' });
        return;
      }
      act('reclone', { nodes: list(), version: v }, { title: 'Reclone ' + what + '?',
        text: 'Each node reboots into the network cloner and is cloned with ' + (v || 'the current version (' + fleet.current + ')') +
          '. Everything on its disk but the preserved partitions is replaced.', ok: 'Reclone',
        force: v && versionByName(v) && versionByName(v).status === 'bad' });
    });
    $('act-assign').addEventListener('click', () => {
      if (none()) return;
      const v = version();
      const nodes = selected();
      act('assign', { nodes: list(), version: v }, v ? {
        title: 'Pin ' + v + ' on ' + nodes.length + ' node(s)?', ok: 'Assign',
        text: 'Their next clone gets ' + v + ' instead of the current version (a canary).',
        force: versionByName(v) && versionByName(v).status === 'bad' } : {
        title: 'Clear the pins of ' + nodes.length + ' node(s)?', ok: 'Clear pins',
        text: 'Their next clone gets the current version.' });
    });
    $('act-sync').addEventListener('click', () => {
      if (none()) return;
      confirmDialog({ title: 'Sync ' + selected().length + ' node(s)', infoOnly: true, command: 'clonecd sync --help',
        text: 'Sync brings running nodes to a version in place, from the master\'s shell; this server does not start it. Nodes: ' + list() });
    });
  }

  // --- the fleet page ----------------------------------------------------
  const rows = new Map(); // node -> its row's parts
  let filterSet = null; // the nodeset filter's names, or null
  let filterState = params.get('state') || '';
  let order = '';

  function nodeRow(n) {
    let r = rows.get(n.node);
    if (r) return r;
    r = { tr: h('tr', { 'data-node': n.node }) };
    if (admin) {
      r.sel = h('input', { type: 'checkbox', 'aria-label': 'select ' + n.node, on: { change: updateSelection } });
      r.tr.append(h('td', {}, r.sel));
    }
    r.state = h('span', { class: 'state' });
    r.step = h('td', { class: 'step' });
    r.bar = progressBar(false);
    r.version = h('td', { class: 'version' });
    r.rate = h('td', { class: 'num rate' });
    r.when = h('td', { class: 'num when' });
    r.err = h('td', { class: 'err' });
    r.log = h('td', { class: 'log' });
    r.tr.append(h('td', {}, h('a', { href: nodeURL(n.node), text: n.node })), h('td', {}, r.state), r.step,
      h('td', { class: 'prog' }, r.bar.el), r.version, r.rate, r.when, r.err, r.log);
    rows.set(n.node, r);
    return r;
  }
  function updateRow(r, n) {
    r.state.textContent = n.state;
    r.state.className = 'state ' + n.state;
    r.tr.dataset.state = n.state;
    r.step.textContent = stepText(n);
    setBar(r.bar, n);
    r.version.textContent = versionText(n);
    r.rate.textContent = n.state === 'cloning' ? rate(n.rate) : '–';
    r.when.textContent = ago(n.when);
    r.when.title = when(n.when);
    r.err.textContent = n.error || '';
    r.err.title = n.error || '';
    const link = n.hasLog ? h('a', { href: nodeURL(n.node) + '#log', text: 'log' }) : '–';
    r.log.replaceChildren(link);
    r.tr.hidden = !((!filterSet || filterSet.has(n.node)) && (!filterState || n.state === filterState));
  }
  // servedText is a version's image bytes served: by the master, and by
  // the nodes to each other when the server runs a swarm.
  function servedText(b) {
    if (!b) return '–';
    return b.peerBytes == null ? bytes(b.bytes) : bytes(b.bytes) + ' · peers ' + bytes(b.peerBytes);
  }
  function renderFleet() {
    renderHeader();
    const s = fleet.streams;
    if (s) {
      setText('st-active', s.active);
      setText('st-max', s.max);
      setText('st-queued', s.queued + ' (at most ' + s.maxQueue + ')');
      setText('st-served', s.served);
      setText('st-refused', s.refused);
      setText('st-bytes', bytes(s.bytes));
      setText('st-peers', s.peerBytes == null ? 'no swarm' : bytes(s.peerBytes));
    }
    // Versions.
    const served = new Map(((s && s.versions) || []).map((b) => [b.version, b]));
    const vrows = fleet.versions.slice().reverse().map((v) => h('tr', { 'data-version': v.version, 'data-status': v.status },
      h('td', { text: v.version }), h('td', {}, h('span', { class: 'status ' + v.status, text: v.status })),
      h('td', { text: when(v.date), title: v.date || '' }), h('td', { class: 'num', text: bytes(v.size) }),
      h('td', { class: 'num served', text: servedText(served.get(v.version)) }),
      h('td', { class: 'num', text: v.nodes }), h('td', { class: 'num', text: v.active }), h('td', { class: 'num', text: v.pinned }),
      h('td', { text: [v.note, v.badReason ? 'bad: ' + v.badReason : '', v.changed ? 'image changed after publish!' : ''].filter(Boolean).join(' · ') }),
      admin ? h('td', {}, versionActions(v)) : null));
    $('version-rows').replaceChildren(...vrows);
    fillVersionSelect();
    // Nodes.
    const counts = { waiting: 0, cloning: 0, done: 0, failed: 0, unknown: 0 };
    for (const n of fleet.nodes.values()) {
      counts[n.state] = (counts[n.state] || 0) + 1;
      updateRow(nodeRow(n), n);
    }
    for (const [name, r] of rows) {
      if (!fleet.nodes.has(name)) { r.tr.remove(); rows.delete(name); }
    }
    const names = [...rows.keys()].sort(natural);
    if (names.join(' ') !== order) {
      order = names.join(' ');
      $('node-rows').append(...names.map((n) => rows.get(n).tr));
    }
    const shown = names.filter((n) => !rows.get(n).tr.hidden).length;
    setText('node-count', shown === names.length ? String(names.length) : shown + ' of ' + names.length + ' shown');
    $('no-nodes').hidden = names.length > 0;
    $('state-counts').replaceChildren(...Object.entries(counts).map(([st, c]) => h('button', {
      type: 'button', class: 'count ' + st, 'data-state': st, 'aria-pressed': filterState === st ? 'true' : 'false',
      text: st + ' ' + c, on: { click: () => { setStateFilter(filterState === st ? '' : st); } } })));
    // Newcomers.
    const nc = fleet.newcomers;
    $('newcomers-none').textContent = nc == null ? 'This server runs no PXE server.' : 'None.';
    $('newcomers-none').hidden = !!(nc && nc.length);
    $('newcomers-table').hidden = !(nc && nc.length);
    $('newcomer-rows').replaceChildren(...(nc || []).map((m) => h('tr', {},
      h('td', { text: m.mac }), h('td', { text: m.address || '–' }), h('td', { text: m.vendor || '–' }),
      h('td', { text: m.firmware || '–' }), h('td', { text: when(m.firstSeen) }), h('td', { text: ago(m.lastSeen) }))));
    if (admin) updateSelection();
  }
  function setStateFilter(st) {
    filterState = st;
    $('f-state').value = st;
    saveFilter();
    changed();
  }
  function saveFilter() {
    const q = new URLSearchParams(location.search);
    const nodes = $('f-nodes').value.trim();
    nodes ? q.set('nodes', nodes) : q.delete('nodes');
    filterState ? q.set('state', filterState) : q.delete('state');
    const s = q.toString();
    history.replaceState(null, '', location.pathname + (s ? '?' + s : ''));
  }
  let nodesetTimer = null;
  async function applyNodeset() {
    const v = $('f-nodes').value.trim();
    setText('f-error', '');
    if (!v) { filterSet = null; saveFilter(); changed(); return; }
    try {
      const r = await fetch('/api/nodeset?set=' + encodeURIComponent(v), { cache: 'no-store' });
      if (!r.ok) { setText('f-error', (await r.text()).trim()); return; }
      filterSet = new Set(await r.json());
      saveFilter();
      changed();
    } catch (e) {
      setText('f-error', e.message);
    }
  }
  function selectedNodes() {
    return [...rows.entries()].filter(([, r]) => r.sel.checked && !r.tr.hidden).map(([n]) => n).sort(natural);
  }
  function updateSelection() { setText('sel-count', selectedNodes().length); }

  function initFleet() {
    $('f-nodes').value = params.get('nodes') || '';
    $('f-state').value = filterState;
    $('f-nodes').addEventListener('input', () => { clearTimeout(nodesetTimer); nodesetTimer = setTimeout(applyNodeset, 300); });
    $('filter').addEventListener('submit', (e) => { e.preventDefault(); applyNodeset(); });
    $('f-state').addEventListener('change', () => setStateFilter($('f-state').value));
    if ($('f-nodes').value) applyNodeset();
    if (admin) {
      $('sel-all').addEventListener('change', () => {
        for (const r of rows.values()) if (!r.tr.hidden) r.sel.checked = $('sel-all').checked;
        updateSelection();
      });
      nodeActions(selectedNodes);
    }
  }

  // --- a node's page -------------------------------------------------------
  const nodeName = body.dataset.node;
  let nodeBar = null;
  let lastStarted = null;
  let lastFinished = null;
  let lastWhen = null;

  function renderNodePage() {
    renderHeader();
    fillVersionSelect();
    const n = fleet.nodes.get(nodeName);
    if (!n) {
      setText('n-state', 'not reported');
      $('n-state').className = 'state unknown';
      return;
    }
    if (!nodeBar) {
      const el = $('n-bar');
      nodeBar = { el, fill: el.querySelector('.fill'), label: el.querySelector('.label'), big: true };
    }
    setText('n-state', n.state);
    $('n-state').className = 'state ' + n.state;
    setText('n-summary', n.summary !== n.state ? n.summary : '');
    setBar(nodeBar, n);
    setText('n-op', n.op);
    setText('n-version', n.version || '–');
    setText('n-assigned', n.assigned || '–');
    setText('n-step', stepText(n));
    setText('n-rate', n.state === 'cloning' ? rate(n.rate) : '–');
    setText('n-attempt', n.attempt || '–');
    setText('n-address', n.address || '–');
    setText('n-started', when(n.started));
    setText('n-finished', when(n.finished));
    setText('n-when', ago(n.when));
    setText('n-detail', n.detail || '–');
    $('n-error-box').hidden = !n.error;
    setText('n-error', n.error || '');
    if (n.started !== lastStarted) {
      lastStarted = n.started;
      fetchLog(true); // a new clone: a new log
    } else if (n.when !== lastWhen && n.hasLog) {
      fetchLog(false);
    }
    lastWhen = n.when;
    if (n.finished !== lastFinished) {
      lastFinished = n.finished;
      fetchHistory();
    }
  }

  // The log grows while the node clones (it uploads it at each step and
  // at the end); only its new bytes are fetched (Range).
  let logLen = 0;
  let logBusy = false;
  let logAgain = false;
  let decoder = new TextDecoder();
  async function fetchLog(whole) {
    if (logBusy) { logAgain = logAgain || whole || 'more'; return; }
    logBusy = true;
    const pre = $('log');
    try {
      if (whole) { logLen = 0; decoder = new TextDecoder(); }
      const headers = logLen > 0 ? { Range: 'bytes=' + logLen + '-' } : {};
      const r = await fetch('/api/nodes/' + encodeURIComponent(nodeName) + '/log', { headers, cache: 'no-store' });
      if (r.status === 404) { pre.textContent = '(no log uploaded yet)'; logLen = 0; return; }
      if (r.status === 416) {
        const total = parseInt((r.headers.get('Content-Range') || '').split('/')[1], 10);
        if (!isNaN(total) && total < logLen) logAgain = true; // a shorter log: a new one
        return;
      }
      if (!r.ok) return;
      const buf = await r.arrayBuffer();
      const txt = decoder.decode(buf, { stream: true });
      if (r.status === 206) pre.append(txt);
      else pre.textContent = txt;
      logLen = (r.status === 206 ? logLen : 0) + buf.byteLength;
      if ($('log-follow').checked) pre.scrollTop = pre.scrollHeight;
    } catch (e) {
      // the next change tries again
    } finally {
      logBusy = false;
      if (logAgain) { const w = logAgain === true; logAgain = false; fetchLog(w); }
    }
  }
  async function fetchHistory() {
    try {
      const r = await fetch('/api/nodes/' + encodeURIComponent(nodeName) + '/history', { cache: 'no-store' });
      if (!r.ok) return;
      const runs = (await r.json()).reverse();
      $('no-history').hidden = runs.length > 0;
      $('history-rows').replaceChildren(...runs.map((run) => h('tr', { 'data-result': run.result },
        h('td', { text: when(run.finished) }), h('td', { text: run.op }), h('td', { text: run.version || '–' }),
        h('td', {}, h('span', { class: 'state ' + run.result, text: run.result })), h('td', { text: run.step || '–' }),
        h('td', { class: 'num', text: run.started ? dur((date(run.finished) - date(run.started)) / 1000) : '–' }),
        h('td', { class: 'num', text: run.attempt || '–' }), h('td', { class: 'err', text: run.error || '', title: run.error || '' }))));
    } catch (e) {
      // shown again at the next change
    }
  }
  function initNode() {
    if (admin) nodeActions(() => [nodeName]);
    fetchHistory();
    setInterval(() => { if (fleet.nodes.get(nodeName)) fetchLog(false); }, 5000);
  }

  if (page === 'node') initNode();
  else initFleet();
  connect();
  setInterval(changed, 5000); // "12s ago" moves on
})();
