/** Listing trees the tests made (staged installs, daemon work directories). */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Every file (anything but a directory) under `dir`, as paths relative to it, sorted. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}
