// Bad input never crashes pidone: a few hundred fuzz cases of each kind (command lines,
// configurations through --check) with a fixed seed and with a random one (printed), and
// the inputs the fuzzer once found wrong. The 100,000-case run is
// `bun scripts/stress/fuzz.ts --cases 100000`; the cases and the judge are shared.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { PIDONE, tempDir } from "./helpers.ts";
import { confirmHangs, runPool, type CaseResult } from "../scripts/stress/fuzz-cases.ts";

const FIXED_SEED = 1313;
const RANDOM_SEED = (Math.random() * 2 ** 32) >>> 0;
const HANG_MS = 15_000;
const work = tempDir("pidone-fuzz-test-");
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function fuzz(kind: "cli" | "config", seed: number, count: number): Promise<string[]> {
  const failed: CaseResult[] = [];
  const o = { seed, kinds: [kind] as const, pidone: PIDONE, workDir: join(work, `${kind}-${seed}`), hangMs: HANG_MS };
  await runPool({ ...o, indexes: Array.from({ length: count }, (_, i) => i), jobs: availableParallelism(), onResult: (r) => r.failure && failed.push(r) });
  const { failures } = await confirmHangs(failed, o);
  return failures.map((f) => `${f.failure}\n  replay: bun scripts/stress/fuzz.ts --kind ${kind} --seed ${seed} --only ${f.index}`);
}

describe("fuzzed input ends with a defined exit code and a message", () => {
  console.log(`fuzz: random seed ${RANDOM_SEED} (fixed seed ${FIXED_SEED})`);
  for (const [kind, fixed, random] of [["cli", 250, 100], ["config", 250, 100]] as const) {
    test(`${kind}: ${fixed} cases, seed ${FIXED_SEED}`, async () => {
      expect(await fuzz(kind, FIXED_SEED, fixed)).toEqual([]);
    }, 180_000);
    test(`${kind}: ${random} cases, random seed ${RANDOM_SEED}`, async () => {
      expect(await fuzz(kind, RANDOM_SEED, random)).toEqual([]);
    }, 180_000);
  }
});
