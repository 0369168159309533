// The byte-level tokenizer of the language models: a token is one byte of the UTF-8 text, plus one
// end-of-text token that separates documents, so any text encodes without an unknown symbol and the
// vocabulary is the same for every corpus. Its JSON form is saved with each model, so `generate`
// decodes exactly as training encoded.
import { z } from 'zod';

const BYTE_VALUES = 256;
/** Marks the end of a document; the corpus puts it between files, generation stops at it. */
export const END_OF_TEXT = BYTE_VALUES;

export const tokenizerJsonSchema = z.strictObject({
  type: z.literal('byte'),
  /** 256 byte values and the end-of-text token. */
  vocabSize: z.literal(BYTE_VALUES + 1),
  endOfText: z.literal(END_OF_TEXT),
});
export type TokenizerJson = z.infer<typeof tokenizerJsonSchema>;

export class ByteTokenizer {
  readonly vocabSize = BYTE_VALUES + 1;
  readonly endOfText = END_OF_TEXT;
  private readonly decoder = new TextDecoder();

  encode(text: string): Uint16Array {
    return Uint16Array.from(new TextEncoder().encode(text));
  }

  /**
   * Text of the bytes among `ids`; the end-of-text token reads as a blank line, and bytes that are
   * not valid UTF-8 (a sample may stop mid-character) as U+FFFD.
   */
  decode(ids: ArrayLike<number>): string {
    const out: string[] = [];
    let bytes: number[] = [];
    const flush = () => {
      out.push(this.decoder.decode(Uint8Array.from(bytes)));
      bytes = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`token id ${id} is outside the byte tokenizer's vocabulary 0..${this.vocabSize - 1}`);
      }
      if (id === END_OF_TEXT) {
        flush();
        out.push('\n\n');
      } else bytes.push(id);
    }
    flush();
    return out.join('');
  }

  toJSON(): TokenizerJson {
    return { type: 'byte', vocabSize: BYTE_VALUES + 1, endOfText: END_OF_TEXT };
  }
}

export type Tokenizer = ByteTokenizer;

export function createTokenizer(type: TokenizerJson['type']): Tokenizer {
  switch (type) {
    case 'byte':
      return new ByteTokenizer();
  }
}

/** The tokenizer a saved model (or a text dataset) describes. */
export function tokenizerFromJson(json: unknown): Tokenizer {
  const parsed = tokenizerJsonSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `invalid tokenizer description ${JSON.stringify(json)}: ${z.prettifyError(parsed.error)}; expected ` +
        `{ type: 'byte', vocabSize: 257, endOfText: 256 } as a model trained by this version saves it`,
    );
  }
  return createTokenizer(parsed.data.type);
}
