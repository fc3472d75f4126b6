// Replaced at build time (scripts/build.ts defines these); the fallbacks serve `bun run`.
declare const PIDONE_VERSION: string | undefined;
declare const PIDONE_GIT: string | undefined;

export const VERSION: string = typeof PIDONE_VERSION === "string" ? PIDONE_VERSION : "0.0.0";
export const GIT_COMMIT: string = typeof PIDONE_GIT === "string" ? PIDONE_GIT : "0000000";
/** Docker parses this exact form from its init binary. */
export const VERSION_LINE = `pidone version ${VERSION} - git.${GIT_COMMIT}`;
