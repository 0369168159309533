// The text source of a job: a corpus read from files (or every matching file of a directory), cut
// into token windows that are the samples of the data plan. One definition serves the job spec and
// the loader; it imports nothing but zod and the URL schema, so both can use it without an import cycle.
import { z } from 'zod';
import { dataUrlSchema } from '../data/url.js';

const positiveInt = z.number().int().min(1);

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

export const textSourceSchema = z
  .strictObject({
    type: z.literal('text'),
    /** Text files (paths, file://, http(s):// or nats-obj:// URLs), read in this order. */
    files: z.array(dataUrlSchema).min(1).optional(),
    /** A local directory: every file whose name matches `include`, in name order. */
    dir: z.string().min(1).optional(),
    /** Regular expression a file name in `dir` must match. */
    include: z
      .string()
      .refine(isRegExp, { error: (issue) => `got ${JSON.stringify(issue.input)}, expected a regular expression` })
      .default('\\.txt$'),
    /** Tokens a window feeds the model (its context length); window i predicts tokens [i·stride + 1, i·stride + context + 1). */
    context: positiveInt,
    /** Tokens between the starts of consecutive windows; the default, context, makes windows share only a boundary token. */
    stride: positiveInt.optional(),
    tokenizer: z.enum(['byte']).default('byte'),
    name: z.string().min(1).optional(),
  })
  .superRefine((source, ctx) => {
    if ((source.files === undefined) === (source.dir === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [source.files === undefined ? 'files' : 'dir'],
        message:
          source.files === undefined
            ? 'a text source needs either files (a list of text files) or dir (a directory of .txt files)'
            : 'got both files and dir; name the corpus one way: files or dir',
      });
    }
  });

export type TextSourceInput = z.input<typeof textSourceSchema>;
export type TextSource = z.output<typeof textSourceSchema>;
