// Files imported `with { type: "text" }` (the license) arrive as a string.
declare module "*LICENSE" {
  const text: string;
  export default text;
}
