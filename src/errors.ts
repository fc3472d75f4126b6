/** pidone's own exit codes; the child's codes pass through untouched. */
export const EXIT = {
  /** usage error, or pidone could not set itself up or keep running (tini's 1) */
  FAILURE: 1,
  /** the program exists but cannot be executed */
  CANNOT_EXECUTE: 126,
  /** the program was not found */
  NOT_FOUND: 127,
} as const;

/** A failure before the child runs: printed as one fatal line, exit 1. */
export class StartupError extends Error {
  override name = "StartupError";
}
