/**
 * A small devd.conf(5) reader for the rule files hvguest ships: notify /
 * attach / detach / nomatch blocks of `match "VAR" "VALUE";` and
 * `action "COMMAND";` statements, each block closed by `};`. Enough to
 * reject what devd would reject in these files; `#` comments only.
 */

export interface DevdRule {
  kind: string;
  priority: number;
  match: Record<string, string>;
  action: string;
}

/** Parse devd.conf text; throws an Error naming the first thing devd would not accept. */
export function parseDevd(text: string): DevdRule[] {
  const src = text.replace(/#.*$/gm, '');
  const rules: DevdRule[] = [];
  const block = /(\w+)\s+(\d+)\s*\{([^{}]*)\}\s*;/g;
  let last = 0;
  for (let m; (m = block.exec(src)); last = block.lastIndex) {
    const between = src.slice(last, m.index).trim();
    if (between) throw new Error(`text between blocks: ${between.slice(0, 60)}`);
    if (!['notify', 'attach', 'detach', 'nomatch'].includes(m[1]!)) throw new Error(`not a devd statement: ${m[1]}`);
    const rule: DevdRule = { kind: m[1]!, priority: Number(m[2]), match: {}, action: '' };
    const body = m[3]!.trim();
    if (body && !body.endsWith(';')) throw new Error(`statement without ';' in ${m[1]} ${m[2]}`);
    // Statements end at a ';' outside double quotes (an action may hold several shell commands).
    const stmts = (body.match(/(?:[^;"]|"[^"]*")+/g) ?? []).map((s) => s.trim()).filter(Boolean);
    for (const stmt of stmts) {
      const mm = /^match\s+"([^"]*)"\s+"([^"]*)"$/.exec(stmt);
      const ma = /^action\s+"([^"]*)"$/.exec(stmt);
      if (mm) rule.match[mm[1]!] = mm[2]!;
      else if (ma) rule.action = ma[1]!;
      else throw new Error(`not a devd statement: ${stmt}`);
    }
    rules.push(rule);
  }
  const rest = src.slice(last).trim();
  if (rest) throw new Error(`trailing text: ${rest.slice(0, 60)}`);
  return rules;
}
