// Bun exits when its event loop has nothing referenced, and a signal listener does not
// count. A timer would wake us; instead hold an idle, referenced handle that never fires.
let held: unknown = null;
export function keepAlive(): void {
  if (held) return;
  held = setInterval(() => {}, 2 ** 31 - 1);
}
