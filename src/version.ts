/** This release's version, as in package.json (a test keeps them equal): `--version`, and the API client's User-Agent. */
export const VERSION = '0.1.0';
