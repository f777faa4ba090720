import type { LadderLine } from './ladder.ts';

/**
 * A ladder as a mermaid sequence diagram (https://mermaid.js.org/syntax/sequenceDiagram.html):
 * one arrow per packet, labelled with its time and summary, and the notes (state changes,
 * TLS messages, drops) over the host they belong to. Paste it into any Markdown that
 * renders mermaid (GitHub, GitLab, Obsidian) to draw the exchange.
 */
export function toMermaid(lines: readonly LadderLine[], title?: string): string {
  const participants: string[] = [];
  const id = (name: string): string => {
    if (!participants.includes(name)) participants.push(name);
    return `p${participants.indexOf(name)}`;
  };
  const body: string[] = [];
  for (const l of lines) {
    const time = (l.t / 1000).toFixed(3);
    if (l.kind === 'packet') {
      // A lost packet ends in a cross (-x) instead of an arrowhead.
      const arrow = l.dropped ? '-x' : '->>';
      body.push(
        `  ${id(l.from)}${arrow}${id(l.to)}: ${time} ${mermaidText(l.summary)}${l.dropped ? ` ✗ ${mermaidText(l.dropped)}` : ''}`,
      );
    } else {
      body.push(`  Note over ${id(l.host)}: ${time} ${mermaidText(l.text)}`);
    }
  }
  const head = ['sequenceDiagram'];
  if (title) head.push(`  title ${mermaidText(title)}`);
  for (const [i, name] of participants.entries()) head.push(`  participant p${i} as ${mermaidText(name)}`);
  return `${[...head, ...body].join('\n')}\n`;
}

/** Mermaid ends a statement at ';' and reads '#…;' as an entity: write both as entities. */
function mermaidText(text: string): string {
  return text.replace(/[#;\n]/g, (c) => (c === '#' ? '#35;' : c === ';' ? '#59;' : ' '));
}
