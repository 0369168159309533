// Injected into the bundle (esbuild `inject`): the CommonJS module's __filename and __dirname, which
// tfjs's CommonJS code reads and an ES module lacks. esbuild renames them where a bundled ES module
// declares its own. (`require` comes from the bundle's banner, as esbuild's require shim expects.)
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const file = fileURLToPath(import.meta.url);
export { file as __filename };
export const __dirname = dirname(file);
