// getopt with '+' semantics: options end at the first operand or at "--", so
// `pidone sh -c 'exit 3'` never reads `-c` as pidone's. Short options cluster and take
// attached values (-vvv, -e143, -pSIGKILL); long options take --opt=v or --opt v; no
// prefix abbreviations. Error texts are glibc getopt's.
import { args, type OptionName } from "./definition.ts";

export interface ParsedOption {
  name: OptionName;
  value?: string;
}

export type GrammarResult =
  | { ok: true; options: ParsedOption[]; operandIndex: number }
  | { ok: false; message: string };

interface Spec {
  name: OptionName;
  takesValue: boolean;
}

// Built on the first option: `pidone PROGRAM` (tini's usual form) never needs them.
let specs: { long: Map<string, Spec>; short: Map<string, Spec> } | null = null;
function optionSpecs(): { long: Map<string, Spec>; short: Map<string, Spec> } {
  if (specs) return specs;
  const long = new Map<string, Spec>();
  const short = new Map<string, Spec>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    const spec: Spec = { name: name as OptionName, takesValue: def.type === "string" };
    long.set(name, spec);
    for (const a of ("alias" in def ? def.alias : []) as readonly string[]) short.set(a, spec);
  }
  return (specs = { long, short });
}

/** Parses argv[1..] (argv[0] is the program name, used in messages). */
export function parseGrammar(argv: readonly string[]): GrammarResult {
  const prog = argv[0] ?? "pidone";
  const options: ParsedOption[] = [];
  let i = 1;
  while (i < argv.length) {
    const tok = argv[i]!;
    if (tok === "--") {
      i++;
      break;
    }
    if (!tok.startsWith("-") || tok === "-") break;
    const { long: longSpecs, short: shortSpecs } = optionSpecs();

    if (tok.startsWith("--")) {
      const eq = tok.indexOf("=");
      const key = eq === -1 ? tok.slice(2) : tok.slice(2, eq);
      const spec = longSpecs.get(key);
      if (!spec) return { ok: false, message: `${prog}: unrecognized option '--${key}'` };
      if (!spec.takesValue) {
        if (eq !== -1) return { ok: false, message: `${prog}: option '--${key}' doesn't allow an argument` };
        options.push({ name: spec.name });
        i++;
        continue;
      }
      if (eq !== -1) {
        options.push({ name: spec.name, value: tok.slice(eq + 1) });
        i++;
        continue;
      }
      if (i + 1 >= argv.length) return { ok: false, message: `${prog}: option '--${key}' requires an argument` };
      options.push({ name: spec.name, value: argv[i + 1]! });
      i += 2;
      continue;
    }

    // A cluster of short options.
    let consumedNext = false;
    for (let j = 1; j < tok.length; j++) {
      const ch = tok[j]!;
      const spec = shortSpecs.get(ch);
      if (!spec) return { ok: false, message: `${prog}: invalid option -- '${ch}'` };
      if (!spec.takesValue) {
        options.push({ name: spec.name });
        continue;
      }
      const attached = tok.slice(j + 1);
      if (attached !== "") {
        options.push({ name: spec.name, value: attached });
      } else {
        if (i + 1 >= argv.length) return { ok: false, message: `${prog}: option requires an argument -- '${ch}'` };
        options.push({ name: spec.name, value: argv[i + 1]! });
        consumedNext = true;
      }
      break;
    }
    i += consumedNext ? 2 : 1;
  }
  return { ok: true, options, operandIndex: i };
}
