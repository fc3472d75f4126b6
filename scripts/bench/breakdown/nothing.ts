// Nothing: the first dynamic import pays for the module loader itself.
export const nothing = 0;
