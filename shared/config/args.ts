/**
 * Command-line flags (--name value, --name=value, --flag) with environment
 * fallbacks: a flag wins over GPUSVM_* variables, which win over defaults.
 */
export type Flags = Map<string, string>

export function parseFlags (argv: readonly string[]): Flags {
  const flags: Flags = new Map()
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (!a.startsWith('--')) continue
    const eq = a.indexOf('=')
    if (eq > 0) {
      flags.set(a.slice(2, eq), a.slice(eq + 1))
    } else {
      const next = argv[i + 1]
      if (next !== undefined && !next.startsWith('--')) {
        flags.set(a.slice(2), next)
        i++
      } else {
        flags.set(a.slice(2), 'true')
      }
    }
  }
  return flags
}

export function setting (flags: Flags, flag: string, env: string): string | undefined {
  return flags.get(flag) ?? process.env[env] ?? undefined
}

export function intSetting (flags: Flags, flag: string, env: string, fallback: number): number {
  const v = setting(flags, flag, env)
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${flag} / ${env} must be a non-negative integer (got "${v}")`)
  return n
}
