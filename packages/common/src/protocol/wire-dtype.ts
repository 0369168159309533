// Element types gradient chunks travel as. f32 is exact; f16 and bf16 halve the bytes on the wire
// while every rank still accumulates in fp32.
export const WIRE_DTYPES = ['f32', 'f16', 'bf16'] as const;

export type WireDtype = (typeof WIRE_DTYPES)[number];

export const BYTES_PER_ELEMENT: Readonly<Record<WireDtype, number>> = { f32: 4, f16: 2, bf16: 2 };

export function isWireDtype(value: unknown): value is WireDtype {
  return typeof value === 'string' && (WIRE_DTYPES as readonly string[]).includes(value);
}
