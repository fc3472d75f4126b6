// GPG signatures for a release: a detached, armoured <file>.asc for every file and for
// SHA256SUMS, made with the secret key PIDONE_SIGNING_KEY names (an armoured key file;
// PIDONE_SIGNING_PASSPHRASE if it has one), and the public key twice: armoured
// (pidone-signing-key.asc) and as a binary keyring (pidone-signing-key.gpg), which is
// what gpgv 2.2 reads (it rejects an armoured keyring). Each signature is checked with
// gpgv against that keyring before the release is called signed.
//
// gpg runs in a throwaway home, so the user's keyrings and agent are never touched.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

export const PUBLIC_KEY = "pidone-signing-key.asc";
export const KEYRING = "pidone-signing-key.gpg";

export interface SignResult {
  fingerprint: string;
  signatures: string[];
  keyFiles: string[];
}

function gpg(home: string, args: string[], stdin?: string): Buffer {
  const r = Bun.spawnSync(["gpg", "--homedir", home, "--batch", "--no-tty", "--quiet", ...args], {
    stdin: stdin === undefined ? "ignore" : Buffer.from(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  if (!r.success) throw new Error(`gpg ${args.filter((a) => !a.startsWith("/")).join(" ")} failed: ${r.stderr.toString().trim().replace(/\s*\n\s*/g, "; ")}`);
  return r.stdout;
}

/** Signs `files` (paths) when PIDONE_SIGNING_KEY is set; null (and a warning) otherwise. */
export function signRelease(outDir: string, files: string[]): SignResult | null {
  const keyFile = process.env.PIDONE_SIGNING_KEY;
  if (!keyFile) {
    console.warn("release: UNSIGNED: PIDONE_SIGNING_KEY is not set, so the release has no .asc signatures and no public key");
    return null;
  }
  if (!existsSync(keyFile)) throw new Error(`PIDONE_SIGNING_KEY=${keyFile}: no such file`);
  if (!Bun.spawnSync(["sh", "-c", "command -v gpg && command -v gpgv"]).success)
    throw new Error("signing needs gpg and gpgv (apt-get install gnupg gpgv)");
  const home = mkdtempSync(join(tmpdir(), "pidone-gpg-"));
  try {
    gpg(home, ["--import", keyFile]);
    const fingerprints = gpg(home, ["--with-colons", "--list-secret-keys"])
      .toString()
      .split("\n")
      .filter((l, i, all) => l.startsWith("fpr:") && all[i - 1]?.startsWith("sec:"))
      .map((l) => l.split(":")[9]!);
    if (fingerprints.length !== 1) throw new Error(`PIDONE_SIGNING_KEY must hold one secret key, not ${fingerprints.length}`);
    const fingerprint = fingerprints[0]!;
    const publicKey = join(outDir, PUBLIC_KEY);
    const keyring = join(outDir, KEYRING);
    writeFileSync(publicKey, gpg(home, ["--armor", "--export", fingerprint]));
    writeFileSync(keyring, gpg(home, ["--export", fingerprint]));
    const passphrase = process.env.PIDONE_SIGNING_PASSPHRASE ?? "";
    const signatures: string[] = [];
    for (const file of files) {
      const asc = `${file}.asc`;
      rmSync(asc, { force: true });
      gpg(
        home,
        ["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--local-user", fingerprint, "--armor", "--detach-sign", "--output", asc, file],
        passphrase,
      );
      const check = Bun.spawnSync(["gpgv", "--homedir", home, "--keyring", keyring, asc, file], { stdout: "pipe", stderr: "pipe" });
      if (!check.success) throw new Error(`gpgv does not accept ${basename(asc)}: ${check.stderr.toString().trim().replace(/\s*\n\s*/g, "; ")}`);
      signatures.push(asc);
    }
    return { fingerprint, signatures, keyFiles: [publicKey, keyring] };
  } finally {
    // The agent gpg started for this home; it would outlive the release otherwise.
    Bun.spawnSync(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], { stdout: "ignore", stderr: "ignore" });
    rmSync(home, { recursive: true, force: true });
  }
}
