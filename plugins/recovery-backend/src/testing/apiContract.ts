import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { Response } from 'supertest';

/** One request as a test sent it, under the plugin's base path. */
export interface SentRequest {
  method: 'get' | 'post';
  /** Path and query, e.g. `/runs?active=true`. */
  url: string;
  body?: unknown;
  /** The body's content type as sent. */
  contentType?: string;
}

/** The parts of an OpenAPI 3.0 document read here, its references resolved. */
type Schema = Record<string, unknown>;
interface Content {
  [mediaType: string]: { schema: Schema };
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Content };
  responses: Record<string, { content?: Content }>;
}
type PathItem = { parameters?: Parameter[] } & Partial<
  Record<'get' | 'post', Operation>
>;

const METHODS = ['get', 'post'] as const;

/**
 * The OpenAPI description as a contract: each exchange a test makes is checked against it
 * (route, query parameters, request body, status, content type, response body), and each
 * documented answer a check met is remembered, so a test can tell which it never saw.
 */
export class ApiContract {
  /** `GET /runs/{id} 404`, for each documented answer a checked exchange gave. */
  readonly exercised = new Set<string>();
  // Undocumented fields and formats are mistakes of the spec, not something to skip.
  private readonly ajv = addFormats(new Ajv({ allErrors: true, strict: true }));
  // Query values are text: `limit=5` is the integer 5.
  private readonly queryAjv = addFormats(
    new Ajv({ allErrors: true, strict: true, coerceTypes: true }),
  );
  private readonly validators = new Map<Ajv, Map<Schema, ValidateFunction>>();
  private readonly routes: Array<{
    template: string;
    pattern: RegExp;
    item: PathItem;
  }>;

  private constructor(paths: Record<string, PathItem>) {
    this.routes = Object.entries(paths).map(([template, item]) => ({
      template,
      // A path parameter is one segment: `%2F` inside it stays encoded.
      pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`),
      item,
    }));
  }

  static async load(specPath: string): Promise<ApiContract> {
    const api = (await SwaggerParser.dereference(specPath)) as unknown as {
      paths: Record<string, PathItem>;
    };
    return new ApiContract(api.paths);
  }

  /** Every answer the description documents, as `GET /runs/{id} 404`. */
  documented(): string[] {
    return this.routes.flatMap(({ template, item }) =>
      METHODS.flatMap(method =>
        Object.keys(item[method]?.responses ?? {}).map(
          status => `${method.toUpperCase()} ${template} ${status}`,
        ),
      ),
    );
  }

  /** Every operation, as method and path template. */
  operations(): Array<{ method: 'get' | 'post'; template: string }> {
    return this.routes.flatMap(({ template, item }) =>
      METHODS.filter(m => item[m]).map(method => ({ method, template })),
    );
  }

  /** Throws, naming each difference, where the exchange is not as the description says. */
  check(sent: SentRequest, res: Response): void {
    const path = sent.url.split('?')[0];
    const route = this.routes.find(r => r.pattern.test(path));
    const operation = route?.item[sent.method];
    const exchange = `${sent.method.toUpperCase()} ${sent.url} → ${res.status}`;
    if (!route || !operation)
      throw new Error(`${exchange}: no such route in the description`);
    const parameters = [
      ...(route.item.parameters ?? []),
      ...(operation.parameters ?? []),
    ];
    const { undocumented, refused } = this.requestAgainst(
      operation,
      parameters,
      sent,
    );
    const differences = this.answerAgainst(operation, res);
    // The server may refuse more than the description (an entity that is not there), never less;
    // what it does not name at all (a parameter, a body's content type) it must refuse.
    refused.push(...undocumented);
    if (res.status < 300 && refused.length > 0) {
      differences.push(
        `answered ${res.status} to a request the description refuses (${refused.join('; ')})`,
      );
    }
    if (operation.responses[String(res.status)])
      this.exercised.add(
        `${sent.method.toUpperCase()} ${route.template} ${res.status}`,
      );
    if (differences.length > 0)
      throw new Error(
        `${exchange}, not as openapi.yaml says:\n- ${differences.join('\n- ')}`,
      );
  }

  /** What of the request the description does not name at all, and what it names but refuses. */
  private requestAgainst(
    operation: Operation,
    parameters: Parameter[],
    sent: SentRequest,
  ) {
    const undocumented: string[] = [];
    const refused: string[] = [];
    const values = new Map<string, string[]>();
    for (const [name, value] of new URLSearchParams(
      sent.url.split('?')[1] ?? '',
    ))
      values.set(name, [...(values.get(name) ?? []), value]);
    for (const [name, given] of values) {
      const parameter = parameters.find(
        p => p.in === 'query' && p.name === name,
      );
      if (!parameter) {
        undocumented.push(`query parameter ${name} is not documented`);
        continue;
      }
      // Wrapped in an object: Ajv coerces properties, not the value it is given. Given twice, an array.
      const validate = this.validator(
        this.queryAjv,
        parameter.schema,
        schema => ({ type: 'object', properties: { value: schema } }),
      );
      if (!validate({ value: given.length === 1 ? given[0] : given }))
        refused.push(`query ${name}: ${describe(validate.errors)}`);
    }
    for (const p of parameters) {
      if (p.in === 'query' && p.required && !values.has(p.name))
        refused.push(`query ${p.name} is required`);
    }
    if (sent.body !== undefined) {
      const media =
        operation.requestBody &&
        mediaTypeIn(operation.requestBody.content, sent.contentType);
      if (!media) {
        undocumented.push(
          `a ${sent.contentType} request body is not documented`,
        );
      } else {
        const validate = this.validator(
          this.ajv,
          operation.requestBody!.content[media].schema,
        );
        if (!validate(sent.body))
          refused.push(`request body: ${describe(validate.errors)}`);
      }
    } else if (operation.requestBody?.required) {
      refused.push('a request body is required');
    }
    return { undocumented, refused };
  }

  /** Where the answer's status, content type or body is not one the description documents. */
  private answerAgainst(operation: Operation, res: Response): string[] {
    const answer = operation.responses[String(res.status)];
    if (!answer)
      return [
        `status ${res.status} is not documented (body: ${res.text?.slice(0, 300)})`,
      ];
    const hasBody = Boolean(res.text);
    if (!answer.content)
      return hasBody
        ? [`a ${res.type} body is not documented: ${res.text.slice(0, 300)}`]
        : [];
    const media = mediaTypeIn(answer.content, res.type);
    if (!media)
      return [
        `content type ${res.type || '(none)'} is not documented (${Object.keys(answer.content).join(', ')})`,
      ];
    if (!hasBody) return ['no body, where one is documented'];
    const validate = this.validator(this.ajv, answer.content[media].schema);
    return validate(res.body)
      ? []
      : [`response body: ${describe(validate.errors)}`];
  }

  /** The compiled schema, once per schema and Ajv. */
  private validator(
    ajv: Ajv,
    schema: Schema,
    wrap = (s: Schema) => s,
  ): ValidateFunction {
    const compiled =
      this.validators.get(ajv) ?? new Map<Schema, ValidateFunction>();
    this.validators.set(ajv, compiled);
    let validate = compiled.get(schema);
    if (!validate) {
      validate = ajv.compile(wrap(schema));
      compiled.set(schema, validate);
    }
    return validate;
  }
}

/** The documented media type a content type falls under: itself, `type/*` or `*\/*`. */
function mediaTypeIn(content: Content, contentType = ''): string | undefined {
  const type = contentType.split(';')[0].trim().toLowerCase();
  return [type, `${type.split('/')[0]}/*`, '*/*'].find(t => t in content);
}

/** Ajv's errors, each with where it is and the field at fault. */
function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map(
      e =>
        `${e.instancePath || '/'} ${e.message}${e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`,
    )
    .join('; ');
}
