import SwaggerParser from '@apidevtools/swagger-parser';
import { readFileSync } from 'fs';
import { resolve } from 'path';
import { parse } from 'yaml';
import { createRouter, RouterOptions } from '../service/router';

const SPEC = resolve(__dirname, 'openapi.yaml');
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

describe('openapi.yaml', () => {
  it('is a valid OpenAPI document, its references resolved', async () => {
    const api = await SwaggerParser.validate(SPEC);
    expect(Object.keys(api.paths ?? {}).length).toBeGreaterThan(0);
  });

  it('documents exactly the routes the router serves', async () => {
    const spec = parse(readFileSync(SPEC, 'utf8')) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(spec.paths)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter(m => METHODS.includes(m))
          .map(m => `${m.toUpperCase()} ${path}`),
      )
      .sort();
    // Only the routes are read here; no handler runs, so the services stay out.
    const router = await createRouter({
      maxEventsRequestSize: '1mb',
    } as unknown as RouterOptions);
    // A route registered in steps (POST /events: its body parser, then its handler) is one route.
    const layers = router.stack as Array<{
      route?: { path: string; methods: Record<string, boolean> };
    }>;
    const served = [
      ...new Set(
        layers.flatMap(l =>
          l.route
            ? Object.keys(l.route.methods).map(
                m =>
                  `${m.toUpperCase()} ${l.route!.path.replace(/:(\w+)/g, '{$1}')}`,
              )
            : [],
        ),
      ),
    ].sort();
    expect(served.length).toBeGreaterThan(5);
    expect(documented).toEqual(served);
  });
});
