// A checker for the subset of JSON Schema 2020-12 the pod schema uses, so the
// test that compares the schema with the validator needs no schema library.
// A keyword it does not know is an error, not ignored: a schema using one
// would otherwise pass unchecked.

/** A schema violation at a field path written as the validator writes it: spec.subnets[0].cidr. */
export interface SchemaError {
  path: string;
  keyword: string;
}

type Schema = { [key: string]: unknown };

const ANNOTATIONS = new Set(['$schema', 'title', 'description']);
const KNOWN = new Set(['type', 'enum', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'minimum', 'maximum', 'pattern', 'anyOf', 'propertyNames']);

export function checkSchema(schema: Schema, value: unknown, path = ''): SchemaError[] {
  for (const keyword of Object.keys(schema)) {
    if (!ANNOTATIONS.has(keyword) && !KNOWN.has(keyword)) throw new Error(`schema checker: unsupported keyword ${keyword} at ${path || '(root)'}`);
  }
  const errors: SchemaError[] = [];
  const fail = (keyword: string, at = path) => errors.push({ path: at, keyword });

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => isType(value, t))) {
      fail('type');
      return errors; // nothing below applies to a value of the wrong type
    }
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).some((e) => e === value)) fail('enum');
  if (schema.anyOf !== undefined && !(schema.anyOf as Schema[]).some((s) => checkSchema(s, value, path).length === 0)) fail('anyOf');
  if (typeof value === 'string' && typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail('pattern');
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail('minimum');
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail('maximum');
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) fail('minItems');
    if (schema.items !== undefined) for (const [i, item] of value.entries()) errors.push(...checkSchema(schema.items as Schema, item, `${path}[${i}]`));
  }
  if (isObject(value)) {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const join = (key: string) => (path ? `${path}.${key}` : key);
    for (const name of (schema.required ?? []) as string[]) if (!Object.hasOwn(value, name)) fail('required', join(name));
    for (const [key, item] of Object.entries(value)) {
      if (schema.propertyNames !== undefined && checkSchema(schema.propertyNames as Schema, key, join(key)).length) fail('propertyNames', join(key));
      if (Object.hasOwn(properties, key)) errors.push(...checkSchema(properties[key]!, item, join(key)));
      else if (schema.additionalProperties === false) fail('additionalProperties', join(key));
      else if (typeof schema.additionalProperties === 'object') errors.push(...checkSchema(schema.additionalProperties as Schema, item, join(key)));
    }
  }
  return errors;
}

function isType(value: unknown, type: string): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number';
    case 'integer':
      return Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    default:
      throw new Error(`schema checker: unknown type ${type}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
