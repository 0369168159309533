// SHA-256 checks for dataset files: the spec may pin a file's checksum so a changed or corrupted
// download is refused instead of silently training on different data.
import { createHash } from 'node:crypto';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function checksumMismatch(url: string, expected: string, got: string, what: string): Error {
  return new Error(
    `checksum mismatch for ${url}: expected sha256 ${expected}, got ${got}. ${what} ` +
      `Check the URL, or update sha256 in the data spec if the file was meant to change.`,
  );
}

/** Throws when `expected` is given and the bytes do not hash to it. */
export function verifySha256(bytes: Uint8Array, url: string, expected: string | undefined): void {
  if (expected === undefined) return;
  const got = sha256Hex(bytes);
  if (got !== expected) throw checksumMismatch(url, expected, got, 'The file was not loaded.');
}
