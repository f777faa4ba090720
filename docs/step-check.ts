/**
 * Checks what the debugging guide promises, the way a debugger does it: start a program
 * under `node --inspect-brk --import tsx`, talk to V8 over the inspector protocol (CDP),
 * set a breakpoint on an *original* TypeScript line through the module's source map (as
 * Chrome DevTools and VS Code do), step over a few statements, and print each stop as
 * file:line of the TypeScript source.
 *
 *   node --experimental-websocket --import tsx docs/step-check.ts [program.ts] [file-suffix:line]
 *
 * Default: examples/http-over-tcp.ts, breaking in TCP's connect (packages/tcp/src/tcp.ts).
 * Node 20 needs --experimental-websocket for the global WebSocket (Node 22 has it built in).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const program = process.argv[2] ?? 'examples/http-over-tcp.ts';
const [fileSuffix = '', lineText = ''] = (
  process.argv[3] ??
  `packages/tcp/src/tcp.ts:${firstLineOf('packages/tcp/src/tcp.ts', /^ {2}connect\(a: /) + 1}`
).split(':');
const wantLine = Number(lineText); // 1-based, as an editor shows it

function firstLineOf(file: string, re: RegExp): number {
  const i = readFileSync(join(root, file), 'utf8')
    .split('\n')
    .findIndex((l) => re.test(l));
  if (i < 0) throw new Error(`no line matching ${re} in ${file}`);
  return i + 1;
}

/** One mapping of a source map: generated (line, column) to original (source, line, column), 0-based. */
interface Mapping {
  gLine: number;
  gCol: number;
  source: number;
  oLine: number;
  oCol: number;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Decode source map v3 "mappings" (base64 VLQ, fields relative to the previous segment). */
function decodeMappings(mappings: string): Mapping[] {
  const out: Mapping[] = [];
  let source = 0;
  let oLine = 0;
  let oCol = 0;
  mappings.split(';').forEach((line, gLine) => {
    let gCol = 0;
    for (const seg of line.split(',')) {
      if (!seg) continue;
      const fields: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const digit = B64.indexOf(ch);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      gCol += fields[0] ?? 0;
      if (fields.length >= 4) {
        source += fields[1] ?? 0;
        oLine += fields[2] ?? 0;
        oCol += fields[3] ?? 0;
        out.push({ gLine, gCol, source, oLine, oCol });
      }
    }
  });
  return out;
}

const child = spawn(process.execPath, ['--inspect-brk=0', '--import', 'tsx', program], {
  cwd: root,
  stdio: ['ignore', 'ignore', 'pipe'],
});
const wsUrl = await new Promise<string>((resolve, reject) => {
  child.stderr.on('data', (d: Buffer) => {
    const m = /ws:\/\/\S+/.exec(String(d));
    if (m) resolve(m[0]);
  });
  child.once('exit', () => reject(new Error('the program exited before the inspector was up')));
});
const ws = new WebSocket(wsUrl);
await new Promise((r) => ws.addEventListener('open', r));

let nextId = 0;
const waiting = new Map<number, (r: unknown) => void>();
// biome-ignore lint/suspicious/noExplicitAny: CDP results are untyped JSON here
const send = (method: string, params: object = {}): Promise<any> =>
  new Promise((resolve) => {
    const id = ++nextId;
    waiting.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });
// biome-ignore lint/suspicious/noExplicitAny: CDP events are untyped JSON here
const paused: ((p: any) => void)[] = [];
const maps = new Map<
  string,
  { url: string; mappings: Mapping[]; sources: string[]; generatedLines: number }
>();
let target: { scriptId: string; mappings: Mapping[] } | undefined;
let breakpointSet: (() => void) | undefined;

ws.addEventListener('message', (ev) => {
  const m = JSON.parse(String(ev.data));
  if (m.id && waiting.has(m.id)) {
    waiting.get(m.id)?.(m.result ?? m.error);
    waiting.delete(m.id);
  } else if (m.method === 'Debugger.paused') {
    const p = paused.shift();
    if (p) p(m.params);
    else void send('Debugger.resume');
  } else if (m.method === 'Debugger.scriptParsed' && m.params.sourceMapURL?.startsWith('data:')) {
    const json = JSON.parse(Buffer.from(m.params.sourceMapURL.split(',')[1], 'base64').toString());
    const entry = {
      url: m.params.url as string,
      mappings: decodeMappings(json.mappings),
      sources: json.sources as string[],
      generatedLines: (m.params.endLine as number) + 1,
    };
    maps.set(m.params.scriptId, entry);
    if ((m.params.url as string).endsWith(fileSuffix) && !target) {
      target = { scriptId: m.params.scriptId, mappings: entry.mappings };
      // The first generated position that maps to the wanted original line: DevTools' rule.
      const at = entry.mappings
        .filter((x) => x.oLine === wantLine - 1)
        .sort((a, b) => a.gLine - b.gLine || a.gCol - b.gCol)[0];
      if (!at) throw new Error(`no code maps to ${fileSuffix}:${wantLine}`);
      console.log(
        `${fileSuffix}: V8 sees ${entry.generatedLines} generated line(s); the source map has ${entry.mappings.length} mappings`,
      );
      void send('Debugger.setBreakpoint', {
        location: { scriptId: m.params.scriptId, lineNumber: at.gLine, columnNumber: at.gCol },
      }).then(() => breakpointSet?.());
    }
  }
});

/** The original file:line (1-based) of a paused location, through its script's source map. */
function original(loc: { scriptId: string; lineNumber: number; columnNumber: number }): string {
  const map = maps.get(loc.scriptId);
  if (!map) return `(no source map) script ${loc.scriptId} ${loc.lineNumber}:${loc.columnNumber}`;
  let best: Mapping | undefined;
  for (const x of map.mappings) {
    if (x.gLine < loc.lineNumber || (x.gLine === loc.lineNumber && x.gCol <= loc.columnNumber)) {
      if (!best || x.gLine > best.gLine || (x.gLine === best.gLine && x.gCol > best.gCol)) best = x;
    }
  }
  const file = map.url.replace(/^file:\/\//, '').replace(`${root}/`, '');
  return best ? `${file}:${best.oLine + 1}` : `${file}:?`;
}

const nextPause = () =>
  new Promise<{ callFrames: { location: { scriptId: string; lineNumber: number; columnNumber: number } }[] }>(
    (r) => paused.push(r),
  );

await send('Debugger.enable');
// --inspect-brk stops before the first line; resume, the breakpoint is set as tcp.ts loads.
const start = nextPause();
await send('Runtime.runIfWaitingForDebugger');
await start;
const hit = nextPause();
await send('Debugger.resume');
const stops: string[] = [];
let frame = (await hit).callFrames[0];
for (let i = 0; i < 5 && frame; i++) {
  stops.push(original(frame.location));
  const next = nextPause();
  await send('Debugger.stepOver');
  frame = (await next).callFrames[0];
}
console.log(`breakpoint at ${fileSuffix}:${wantLine}; stops while stepping over:`);
for (const s of stops) console.log(`  ${s}`);
child.kill();
process.exit(0);
