// The `bun build` flags of every pidone executable, shared by scripts/build.ts and the
// benchmark, whose floors (an empty program, a minimal forwarder) must be compiled the
// same way to be floors.

/**
 * Start-up code runs once: JavaScriptCore's JIT would compile some of it anyway, on the
 * main thread (the single file's runtime has no concurrent JIT), for nothing. This scales
 * the tier-up thresholds until src/main.ts resets the policy once the child runs
 * (scripts/bench/breakdown.ts shows what it does for an empty program).
 */
export const JIT_POLICY = 8;

export const COMPILE_FLAGS: readonly string[] = [
  "--compile",
  // A compiled Bun program would otherwise read .env and bunfig.toml from whatever
  // directory the container starts in, and hand those variables to the child.
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "--minify",
  "--bytecode",
  // The modes and the help that tini's mode never runs (services, config parsing, citty)
  // go to chunks loaded on their dynamic import, so the start does not load them.
  // Splitting needs the ESM format.
  "--format=esm",
  "--splitting",
  `--compile-jit-policy=${JIT_POLICY}`,
];
