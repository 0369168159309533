// Turns each raw zod issue into a sentence that says what came and what is allowed, e.g.
// `got "adamw", expected one of sgd, momentum, adam, ...; did you mean "adam"?`. It runs as the
// error map of the job-spec parse, where zod still hands over the schema that raised the issue.
import { z } from 'zod';
import { closestMatch } from './suggest.js';

type RawIssue = z.core.$ZodRawIssue;
type AnySchema = z.core.$ZodType;

/** A short, quoted rendering of a value for an error message. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value);
  const text = json ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const KIND: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
  array: 'a list',
};

function kind(expected: string): string {
  return KIND[expected] ?? expected;
}

function oneOf(values: readonly unknown[]): string {
  return values.length === 1 ? show(values[0]) : `one of ${values.map(String).join(', ')}`;
}

function didYouMean(given: unknown, allowed: readonly unknown[]): string {
  if (typeof given !== 'string') return '';
  const match = closestMatch(given, allowed.map(String));
  return match === undefined ? '' : `; did you mean "${match}"?`;
}

/** The keys an object schema accepts, with `?` on the optional ones: `{zoo, params?}`. */
function describeShape(schema: AnySchema): string {
  const def = schema._zod.def;
  if (def.type === 'object') {
    const shape = (def as z.core.$ZodObjectDef).shape;
    const keys = Object.entries(shape).map(([key, s]) => (s._zod.optin ? `${key}?` : key));
    return `{${keys.join(', ')}}`;
  }
  if (def.type === 'union') {
    const union = def as z.core.$ZodDiscriminatedUnionDef;
    if (union.discriminator) {
      const values = union.options.flatMap((o) => [...(o._zod.propValues?.[union.discriminator] ?? [])]);
      return `{${union.discriminator}: ${values.map(String).join('|')}, ...}`;
    }
    return union.options.map(describeShape).join(' or ');
  }
  return def.type;
}

function unknownKeys(issue: RawIssue & { keys: string[] }): string {
  const inst = issue.inst as AnySchema | undefined;
  const allowed = inst?._zod.def.type === 'object' ? Object.keys((inst._zod.def as z.core.$ZodObjectDef).shape) : [];
  const input = issue.input;
  const forType = isRecord(input) && typeof input.type === 'string' ? ` for type "${input.type}"` : '';
  // One line per key, in `keys` order: the formatter gives each line the key's own path.
  return issue.keys
    .map((key) => {
      const match = closestMatch(key, allowed);
      if (match !== undefined) return `unknown key${forType}; did you mean "${match}"?`;
      return `unknown key${forType}; allowed keys are ${allowed.join(', ')}`;
    })
    .join('\n');
}

function range(issue: RawIssue & { code: 'too_small' | 'too_big' }): string {
  const small = issue.code === 'too_small';
  const bound = small ? issue.minimum : issue.maximum;
  const input = issue.input;
  if (issue.origin === 'array' && Array.isArray(input)) {
    return `got ${input.length} items, expected ${small ? 'at least' : 'at most'} ${bound}`;
  }
  if (issue.origin === 'string' && typeof input === 'string') {
    if (input.length === 0) return 'got an empty string, expected a non-empty one';
    return `got ${show(input)}, expected ${small ? 'at least' : 'at most'} ${bound} characters`;
  }
  const op = small ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
  return `got ${show(input)}, expected a number ${op} ${bound}`;
}

/** The zod error map for job specs: every message starts with what came, then what is allowed. */
export const jobSpecErrorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `required but missing; expected ${kind(issue.expected)}`;
      return `got ${show(issue.input)}, expected ${kind(issue.expected)}`;
    case 'invalid_value':
      if (issue.input === undefined) return `required but missing; expected ${oneOf(issue.values)}`;
      return `got ${show(issue.input)}, expected ${oneOf(issue.values)}${didYouMean(issue.input, issue.values)}`;
    case 'too_small':
    case 'too_big':
      return range(issue);
    case 'invalid_format':
      return `got ${show(issue.input)}, expected ${issue.format === 'regex' ? `a string matching ${issue.pattern}` : `a valid ${issue.format}`}`;
    case 'unrecognized_keys':
      return unknownKeys(issue);
    case 'invalid_union': {
      if (issue.discriminator !== undefined) {
        const options: unknown[] = Array.isArray(issue.options) ? issue.options : [];
        const given = isRecord(issue.input) ? issue.input[issue.discriminator] : undefined;
        if (given === undefined) return `required but missing; expected ${oneOf(options)}`;
        return `got ${show(given)}, expected ${oneOf(options)}${didYouMean(given, options)}`;
      }
      const inst = issue.inst as AnySchema | undefined;
      return `got ${show(issue.input)}, expected ${inst ? describeShape(inst) : 'another shape'}`;
    }
    default:
      return undefined;
  }
};
