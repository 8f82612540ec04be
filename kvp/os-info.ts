/**
 * The operating-system facts behind the Auto-pool keys OSName,
 * OSMajorVersion, OSMinorVersion, OSVersion, OSBuildNumber and
 * ProcessorArchitecture (kvp.md section 6), per flavor. Pure functions of
 * uname-style facts and release-file text, so both flavors are testable on
 * any machine.
 */
import type { Flavor } from '../common/wire/constants.js';

/** What the OS says about itself (uname and release files). */
export interface OsFacts {
  /** uname -s: "FreeBSD", "Linux". */
  sysname: string;
  /** uname -r: "14.1-RELEASE-p3", "6.8.0-31-generic". */
  release: string;
  /** uname -m: "amd64", "x86_64". */
  machine: string;
  /** Text of a release file, undefined when it cannot be read (Linux only). */
  readFile(path: string): string | undefined;
}

/** The six OS values the host reads. */
export interface OsInfo {
  osName: string;
  osMajorVersion: string;
  osMinorVersion: string;
  osVersion: string;
  osBuildNumber: string;
  processorArchitecture: string;
}

/**
 * os-release(5) files in lookup order. The C daemon reads only the first;
 * os-release(5) names the second as the fallback when /etc has none.
 */
export const OS_RELEASE_FILES = ['/etc/os-release', '/usr/lib/os-release'] as const;

/** Pre-os-release files the C daemon falls back to: line 1 name, 2 major, 3 minor. */
export const LEGACY_RELEASE_FILES = ['/etc/SuSE-release', '/etc/redhat-release'] as const;

/**
 * os-release variables the way the Linux C daemon reads them: "#" lines
 * skipped, split at the first "=", both quote kinds and newlines dropped, a
 * backslash keeps the next character, the last assignment wins.
 */
export function parseOsRelease(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    let value = '';
    const raw = line.slice(eq + 1);
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i]!;
      if (c === '\\') {
        i++;
        if (i < raw.length) value += raw[i];
      } else if (c !== '"' && c !== "'" && c !== '\r') {
        value += c;
      }
    }
    vars.set(line.slice(0, eq), value);
  }
  return vars;
}

/** The release without its "-suffix": "14.1-RELEASE-p3" → "14.1", "6.8.0-31-generic" → "6.8.0". */
export const releaseBase = (release: string): string => release.split('-')[0]!;

/** OS values per flavor (kvp.md section 6, with pitfalls F26 for FreeBSD). */
export function osInfo(flavor: Flavor, f: OsFacts): OsInfo {
  return flavor === 'freebsd' ? freebsdInfo(f) : linuxInfo(f);
}

function freebsdInfo(f: OsFacts): OsInfo {
  const base = releaseBase(f.release);
  // The C daemon left major/minor empty; test harnesses treat OSMajorVersion
  // as proof of life (microsoft/lis-test#251), so split "14.1" (F26).
  const [major = '', minor = ''] = base.split('.');
  return {
    osName: f.sysname,
    osMajorVersion: major,
    osMinorVersion: minor,
    osVersion: base,
    osBuildNumber: base,
    processorArchitecture: f.machine,
  };
}

function linuxInfo(f: OsFacts): OsInfo {
  let osName = f.sysname;
  let osMajorVersion = '';
  let osMinorVersion = '';
  const osRelease = firstReadable(OS_RELEASE_FILES, f);
  if (osRelease !== undefined) {
    const vars = parseOsRelease(osRelease);
    osName = vars.get('NAME') ?? osName;
    osMajorVersion = vars.get('VERSION_ID') ?? '';
  } else {
    const legacy = firstReadable(LEGACY_RELEASE_FILES, f);
    if (legacy !== undefined && legacy !== '') {
      // Like the C daemon: up to three lines, each used only if present.
      const [name = '', major = '', minor = ''] = legacy.replace(/\r/g, '').split('\n');
      osName = name;
      osMajorVersion = major;
      osMinorVersion = minor;
    }
  }
  return {
    osName,
    osMajorVersion,
    osMinorVersion,
    osVersion: releaseBase(f.release),
    osBuildNumber: f.release,
    processorArchitecture: f.machine,
  };
}

function firstReadable(paths: readonly string[], f: OsFacts): string | undefined {
  for (const p of paths) {
    const text = f.readFile(p);
    if (text !== undefined) return text;
  }
  return undefined;
}
