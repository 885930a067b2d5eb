/** One row of the report's targets table: the target, what the run measured, and whether it was met (null: not measured). */
export interface Verdict { target: string, measured: string, met: boolean | null }
