import { dissect, packetTree, type TreeLayer } from '@stepwire/sim';
import { type FactsOptions, type PacketFacts, packetFacts } from './facts.ts';
import type { Decrypted } from './tls-decrypt.ts';

/**
 * One self-contained HTML page for a captured exchange (a demo run, a scenario or any pcap):
 * the ladder; a packet's layer tree and its bytes, the clicked field highlighted; filters by
 * layer, host and connection; per-connection TCP timelines (sequence numbers and advertised
 * window over time) and the TLS handshake steps. No network access, no build step: the data
 * sits in the page as JSON and a small script draws it.
 */
export interface ViewPacket {
  /** Milliseconds from the start of the capture. */
  t: number;
  bytes: Uint8Array;
  /** Who sent it and to whom, when the caller knows the hosts' names (else from the addresses). */
  from?: string;
  to?: string;
  /** What TLS carried in this packet once decrypted with a key log (stepwire trace). */
  decrypted?: Decrypted[];
}

export interface ViewNote {
  t: number;
  host: string;
  text: string;
  /** The layer the note comes from ('tcp', 'tls', ...), for the layer filter. */
  layer?: string;
}

/** One sent segment's view of its sender's state (RFC 5681 cwnd/ssthresh, RFC 6298 RTT). */
export interface TcpSample {
  t: number;
  host: string;
  srcPort: number;
  dstPort: number;
  cwnd: number;
  /** null until the first loss sets it (Infinity before). */
  ssthresh: number | null;
  srtt: number | null;
  rto: number | null;
}

export interface CaptureView {
  title: string;
  packets: ViewPacket[];
  notes?: ViewNote[];
  /** Names for addresses (for example both addresses of host A map to 'A'). */
  hosts?: Record<string, string>;
  checksums?: FactsOptions;
  /** The senders' congestion window, ssthresh and RTT per segment, when a trace has them. */
  tcpState?: TcpSample[];
}

interface PagePacket {
  i: number;
  t: number;
  from: string;
  to: string;
  summary: string;
  hex: string;
  layers: TreeLayer[];
  flow?: string;
  tcp?: PacketFacts['tcp'];
  refusal?: PacketFacts['refusal'];
}

export function renderHtml(view: CaptureView): string {
  const name = (addr: string | undefined) => (addr === undefined ? '?' : (view.hosts?.[addr] ?? addr));
  const packets: PagePacket[] = view.packets.map((p, i) => {
    const facts = packetFacts(p.bytes, view.checksums);
    return {
      i,
      t: p.t,
      from: p.from ?? name(facts.src),
      to: p.to ?? name(facts.dst),
      summary: [dissect(p.bytes), ...(p.decrypted ?? []).map((d) => d.text)].join(' · '),
      hex: Buffer.from(p.bytes).toString('hex'),
      layers: [...packetTree(p.bytes), ...(p.decrypted ?? []).map(decryptedLayer)],
      ...(facts.flow ? { flow: facts.flow } : {}),
      ...(facts.tcp ? { tcp: facts.tcp } : {}),
      ...(facts.refusal ? { refusal: facts.refusal } : {}),
    };
  });
  const data = { title: view.title, packets, notes: view.notes ?? [], tcpState: view.tcpState ?? [] };
  // Inside <script>, only "</" could end the element early; JSON never needs it raw.
  const json = JSON.stringify(data).replace(/<\//g, '<\\/');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(view.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>${escapeHtml(view.title)}</h1>
  <div id="filters">
    <span id="layers"></span>
    <label>host <select id="host"><option value="">all</option></select></label>
    <label>connection <select id="flow"><option value="">all</option></select></label>
    <label><input type="checkbox" id="notes" checked> notes</label>
  </div>
</header>
<main>
  <section id="ladder-pane"><table id="ladder"><thead><tr><th>time (ms)</th><th>who</th><th>summary</th></tr></thead><tbody></tbody></table></section>
  <section id="detail-pane">
    <div id="tree"><p class="hint">Click a packet to see its layers; click a field to see its bytes.</p></div>
    <pre id="hex"></pre>
  </section>
</main>
<section id="timelines"><h2>TCP connections</h2><div id="charts"></div><h2>TLS handshake steps</h2><ol id="tls"></ol></section>
<script type="application/json" id="data">${json}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/**
 * A decrypted record as a layer of the tree: its bytes are not in the packet as captured (they
 * were encrypted), so its fields point at no packet bytes and show the plaintext instead.
 */
function decryptedLayer(d: Decrypted): TreeLayer {
  const fields = [
    { offset: 0, length: 0, name: d.layer === 'http' ? 'start line' : 'content', value: d.text },
  ];
  if (d.bytes) {
    const head = d.bytes.subarray(0, 256);
    const text =
      d.layer === 'http' ? new TextDecoder('latin1').decode(head) : Buffer.from(head).toString('hex');
    fields.push({
      offset: 0,
      length: 0,
      name: `plaintext (${d.bytes.length} bytes${d.bytes.length > head.length ? `, first ${head.length}` : ''})`,
      value: text,
    });
  }
  return { layer: d.layer, title: d.text, rfc: d.layer === 'http' ? 'RFC 9112' : 'RFC 8446 §5.2', fields };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { padding: 8px 12px; background: #f3f4f6; border-bottom: 1px solid #ddd; }
h1 { font-size: 16px; margin: 0 0 6px; } h2 { font-size: 14px; margin: 12px 0 6px; }
#filters label, #layers label { margin-right: 12px; }
main { display: flex; height: 60vh; }
#ladder-pane { flex: 3; overflow: auto; border-right: 1px solid #ddd; }
#detail-pane { flex: 2; overflow: auto; padding: 6px 10px; }
table { border-collapse: collapse; width: 100%; font-family: ui-monospace, monospace; font-size: 12px; }
th { position: sticky; top: 0; background: #fff; text-align: left; border-bottom: 1px solid #ccc; }
td { padding: 1px 6px; white-space: nowrap; }
tr.packet { cursor: pointer; } tr.packet:hover { background: #eef2ff; }
tr.selected { background: #c7d2fe !important; }
tr.note td { color: #555; font-style: italic; }
tr.hidden { display: none; }
.layer { margin: 4px 0; } .layer summary { font-weight: 600; cursor: pointer; }
.layer.bad summary { color: #b91c1c; }
.field { font-family: ui-monospace, monospace; font-size: 12px; padding: 1px 4px 1px 16px; cursor: pointer; }
.field:hover { background: #f1f5f9; } .field.active { background: #fde68a; }
.field .rfc { color: #6b7280; margin-left: 6px; font-size: 11px; }
.error { color: #b91c1c; font-family: ui-monospace, monospace; padding-left: 16px; }
#hex { font: 12px ui-monospace, monospace; background: #fafafa; padding: 6px; }
#hex .hl { background: #fde68a; } #hex .off { color: #9ca3af; }
#timelines { padding: 0 12px 12px; } .chart { margin: 6px 0 12px; } .chart svg { border: 1px solid #e5e7eb; }
.hint { color: #6b7280; }
`;

// The page's script: plain ES2020 for any browser, no dependencies.
const SCRIPT = `
(() => {
  const data = JSON.parse(document.getElementById('data').textContent);
  const tbody = document.querySelector('#ladder tbody');
  const rows = [];
  const layerNames = new Set();
  const hosts = new Set();
  const flows = new Set();
  for (const p of data.packets) {
    for (const l of p.layers) layerNames.add(l.layer);
    hosts.add(p.from); hosts.add(p.to);
    if (p.flow) flows.add(p.flow);
  }
  for (const n of data.notes) { hosts.add(n.host); if (n.layer) layerNames.add(n.layer); }
  // Time order; at the same instant, packets in capture order before the notes they caused.
  const items = [
    ...data.packets.map((p, k) => ({ kind: 'packet', t: p.t, p, k })),
    ...data.notes.map((n, k) => ({ kind: 'note', t: n.t, n, k: data.packets.length + k })),
  ].sort((a, b) => a.t - b.t || a.k - b.k);
  for (const it of items) {
    const tr = document.createElement('tr');
    const cells = it.kind === 'packet'
      ? [it.t.toFixed(3), it.p.from + ' → ' + it.p.to, it.p.summary]
      : [it.t.toFixed(3), it.n.host, '· ' + it.n.text];
    for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
    tr.className = it.kind;
    if (it.kind === 'packet') {
      tr.dataset.index = String(it.p.i);
      tr.addEventListener('click', () => select(it.p, tr));
    }
    tbody.appendChild(tr);
    rows.push({ tr, it });
  }
  const layersEl = document.getElementById('layers');
  const shown = new Set(layerNames);
  for (const name of [...layerNames].sort()) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox'; box.checked = true; box.dataset.layer = name;
    box.addEventListener('change', () => { box.checked ? shown.add(name) : shown.delete(name); filter(); });
    label.append(box, ' ' + name);
    layersEl.appendChild(label);
  }
  const hostSel = document.getElementById('host');
  for (const h of [...hosts].sort()) hostSel.add(new Option(h, h));
  const flowSel = document.getElementById('flow');
  for (const f of [...flows].sort()) flowSel.add(new Option(f, f));
  const notesBox = document.getElementById('notes');
  for (const el of [hostSel, flowSel, notesBox]) el.addEventListener('change', filter);

  function visible(it) {
    const host = hostSel.value, flow = flowSel.value;
    if (it.kind === 'note') {
      if (!notesBox.checked) return false;
      if (host && it.n.host !== host) return false;
      if (flow) return false;
      return !it.n.layer || shown.has(it.n.layer);
    }
    const p = it.p;
    if (host && p.from !== host && p.to !== host) return false;
    if (flow && p.flow !== flow) return false;
    // A packet is shown when every layer it has is shown (hide TCP: every TCP segment goes).
    return p.layers.every((l) => shown.has(l.layer));
  }
  function filter() { for (const r of rows) r.tr.classList.toggle('hidden', !visible(r.it)); }

  let current = null;
  function select(p, tr) {
    document.querySelectorAll('tr.selected').forEach((x) => x.classList.remove('selected'));
    tr.classList.add('selected');
    current = p;
    const tree = document.getElementById('tree');
    tree.textContent = '';
    for (const l of p.layers) {
      const d = document.createElement('details');
      d.open = true; d.className = 'layer' + (l.layer === 'malformed' ? ' bad' : '');
      const s = document.createElement('summary');
      s.textContent = l.title + (l.rfc ? '  (' + l.rfc + ')' : '');
      const from = Math.min(...l.fields.map((f) => f.offset));
      const to = Math.max(...l.fields.map((f) => f.offset + f.length));
      s.addEventListener('click', () => highlight(from, to - from));
      d.appendChild(s);
      for (const f of l.fields) {
        const row = document.createElement('div');
        row.className = 'field';
        row.textContent = f.name + (f.value !== '' ? ': ' + f.value : '');
        row.addEventListener('click', () => {
          document.querySelectorAll('.field.active').forEach((x) => x.classList.remove('active'));
          row.classList.add('active');
          highlight(f.offset, f.length);
        });
        d.appendChild(row);
      }
      tree.appendChild(d);
    }
    if (p.refusal) {
      const e = document.createElement('div');
      e.className = 'error';
      e.textContent = 'our ' + p.refusal.layer + ' decoder refuses this packet at byte ' + p.refusal.offset +
        (p.refusal.field ? ' (' + p.refusal.field + ')' : '') + ': ' + p.refusal.reason;
      tree.appendChild(e);
    }
    highlight(-1, 0);
  }
  function highlight(from, len) {
    const pre = document.getElementById('hex');
    pre.textContent = '';
    if (!current) return;
    const hex = current.hex;
    const n = hex.length / 2;
    for (let row = 0; row < n; row += 16) {
      const off = document.createElement('span');
      off.className = 'off'; off.textContent = row.toString(16).padStart(4, '0') + '  ';
      pre.appendChild(off);
      for (let i = row; i < Math.min(n, row + 16); i++) {
        const b = document.createElement('span');
        b.textContent = hex.slice(i * 2, i * 2 + 2) + ' ';
        if (i >= from && i < from + len) b.className = 'hl';
        pre.appendChild(b);
      }
      pre.appendChild(document.createTextNode('\\n'));
    }
  }

  // TCP timelines: relative sequence numbers of data segments and the advertised window.
  const charts = document.getElementById('charts');
  for (const flow of [...flows].filter((f) => f.startsWith('tcp'))) {
    const pts = [];
    for (const p of data.packets) {
      if (p.flow !== flow || !p.tcp) continue;
      pts.push({ t: p.t, dir: p.from, seq: p.tcp.seq, len: p.tcp.len, win: p.tcp.win });
    }
    if (pts.length === 0) continue;
    const first = {};
    for (const q of pts) if (!(q.dir in first)) first[q.dir] = q.seq;
    const W = 640, H = 160, t0 = pts[0].t, t1 = Math.max(pts[pts.length - 1].t, t0 + 1);
    const maxSeq = Math.max(1, ...pts.map((q) => ((q.seq - first[q.dir]) >>> 0) + q.len));
    const maxWin = Math.max(1, ...pts.map((q) => q.win));
    const x = (t) => 40 + ((t - t0) / (t1 - t0)) * (W - 50);
    const colors = ['#2563eb', '#dc2626'];
    const dirs = Object.keys(first);
    let svg = '<svg width="' + W + '" height="' + H + '" xmlns="http://www.w3.org/2000/svg">';
    dirs.forEach((d, k) => {
      const mine = pts.filter((q) => q.dir === d);
      svg += '<polyline fill="none" stroke="' + colors[k % 2] + '" stroke-opacity="0.35" points="' +
        mine.map((q) => x(q.t).toFixed(1) + ',' + (H - 10 - (q.win / maxWin) * (H - 20)).toFixed(1)).join(' ') + '"/>';
      for (const q of mine) if (q.len > 0) {
        const y = H - 10 - ((((q.seq - first[d]) >>> 0) + q.len) / maxSeq) * (H - 20);
        svg += '<circle cx="' + x(q.t).toFixed(1) + '" cy="' + y.toFixed(1) + '" r="2" fill="' + colors[k % 2] + '"/>';
      }
    });
    svg += '</svg>';
    const div = document.createElement('div');
    div.className = 'chart';
    const cap = document.createElement('div');
    cap.textContent = flow + ': dots = bytes sent (relative sequence number + length), faint line = window field (unscaled); ' +
      dirs.map((d, k) => d + ' ' + ['blue', 'red'][k % 2]).join(', ');
    div.appendChild(cap);
    div.insertAdjacentHTML('beforeend', svg);
    // The senders' own state, from the trace: cwnd solid, ssthresh dashed, per sender.
    const ports = (flow.match(/:(\\d+)/g) || []).map((x) => Number(x.slice(1)));
    const state = data.tcpState.filter((q) => ports.includes(q.srcPort) && ports.includes(q.dstPort));
    if (state.length > 0) {
      const senders = [...new Set(state.map((q) => q.host + ':' + q.srcPort))];
      const maxY = Math.max(1, ...state.map((q) => q.cwnd), ...state.map((q) => q.ssthresh || 0));
      const y = (v) => H - 10 - (v / maxY) * (H - 20);
      let cw = '<svg class="cwnd" width="' + W + '" height="' + H + '" xmlns="http://www.w3.org/2000/svg">';
      const notesText = [];
      senders.forEach((sd, k) => {
        const mine = state.filter((q) => q.host + ':' + q.srcPort === sd);
        cw += '<polyline fill="none" stroke="' + colors[k % 2] + '" points="' +
          mine.map((q) => x(q.t).toFixed(1) + ',' + y(q.cwnd).toFixed(1)).join(' ') + '"/>';
        const ss = mine.filter((q) => q.ssthresh !== null);
        if (ss.length > 0) cw += '<polyline fill="none" stroke-dasharray="4 3" stroke="' + colors[k % 2] + '" points="' +
          ss.map((q) => x(q.t).toFixed(1) + ',' + y(q.ssthresh).toFixed(1)).join(' ') + '"/>';
        const last = mine[mine.length - 1];
        notesText.push(sd + ' cwnd ' + last.cwnd + ' B' + (last.srtt !== null ? ', srtt ' + last.srtt.toFixed(1) + ' ms' : '') +
          (last.rto !== null ? ', rto ' + last.rto.toFixed(0) + ' ms' : ''));
      });
      cw += '</svg>';
      const cap2 = document.createElement('div');
      cap2.className = 'cwnd-caption';
      cap2.textContent = 'congestion window (solid) and ssthresh (dashed) as each sender sent; last: ' + notesText.join('; ');
      div.appendChild(cap2);
      div.insertAdjacentHTML('beforeend', cw);
    }
    charts.appendChild(div);
  }
  const tls = document.getElementById('tls');
  for (const n of data.notes) if ((n.layer || '').toLowerCase() === 'tls' || /\\btls\\b/.test(n.text)) {
    const li = document.createElement('li');
    li.textContent = n.t.toFixed(3) + ' ms  ' + n.host + ': ' + n.text;
    tls.appendChild(li);
  }
})();
`;
