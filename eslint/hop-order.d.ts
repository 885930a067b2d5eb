import type { Rule } from 'eslint'
export function groupOf (file: string, srcDir: string): string | null
export function refusal (from: string, to: string, toRel: string, typeOnly: boolean): string | null
declare const rule: Rule.RuleModule
export default rule
