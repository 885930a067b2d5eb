/** One row of the report's targets table: the target, what the run measured, whether it was met (null: unmeasured). */
export interface Verdict { target: string, measured: string, met: boolean | null }
