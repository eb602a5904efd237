/**
 * The deployment files, parsed and checked field by field (no Docker engine runs here, so these checks and
 * `npm run check:container` are what keep them honest).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

interface Container {
  name: string;
  image: string;
  command?: string[];
  environment: Array<{ name: string; value: string }>;
  secrets?: Array<{ name: string; valueFrom: string }>;
  mountPoints: Array<{ sourceVolume: string; containerPath: string }>;
  linuxParameters?: { initProcessEnabled?: boolean };
  stopTimeout?: number;
  healthCheck?: { command: string[] };
  portMappings?: Array<{ containerPort: number }>;
  logConfiguration: { logDriver: string; options: Record<string, string> };
}
interface TaskDefinition {
  requiresCompatibilities: string[];
  networkMode: string;
  cpu: string;
  memory: string;
  containerDefinitions: Container[];
  volumes: Array<{ name: string; efsVolumeConfiguration?: { transitEncryption?: string; fileSystemId: string } }>;
}

const api = JSON.parse(read('deploy/ecs/api.task-definition.json')) as TaskDefinition;
const worker = JSON.parse(read('deploy/ecs/worker.task-definition.json')) as TaskDefinition;
const env = (container: Container, name: string) => container.environment.find((entry) => entry.name === name)?.value;

describe('ECS task definitions', () => {
  for (const [name, task] of [['api', api], ['worker', worker]] as const) {
    const container = task.containerDefinitions[0]!;
    it(`${name}: Fargate, awsvpc, awslogs, REDIS_URL from secrets only, EFS with transit encryption, clean stop`, () => {
      expect(task.requiresCompatibilities).toEqual(['FARGATE']);
      expect(task.networkMode).toBe('awsvpc');
      expect(container.logConfiguration.logDriver).toBe('awslogs');
      expect(container.logConfiguration.options['awslogs-group']).toBeTruthy();
      expect(container.secrets?.map((secret) => secret.name)).toContain('REDIS_URL');
      expect(container.secrets!.find((secret) => secret.name === 'REDIS_URL')!.valueFrom).toMatch(/^arn:aws:(secretsmanager|ssm):/);
      expect(container.environment.map((entry) => entry.name)).not.toContain('REDIS_URL');
      const volume = task.volumes.find((entry) => entry.name === container.mountPoints[0]!.sourceVolume)!;
      expect(volume.efsVolumeConfiguration?.transitEncryption).toBe('ENABLED');
      expect(container.mountPoints[0]!.containerPath).toBe('/data');
      expect(env(container, 'UPLOAD_DIR')).toBe('/data/uploads');
      expect(env(container, 'PROCESSED_DIR')).toBe('/data/processed');
      expect(container.linuxParameters?.initProcessEnabled).toBe(true);
      // ECS waits stopTimeout after SIGTERM; the service must be done before then.
      expect(Number(env(container, 'SHUTDOWN_TIMEOUT_SECONDS'))).toBeLessThan(container.stopTimeout!);
      expect(container.stopTimeout).toBeLessThanOrEqual(120);
      // sharp needs room: at least 1 vCPU and 2 GiB.
      expect(Number(task.cpu)).toBeGreaterThanOrEqual(1024);
      expect(Number(task.memory)).toBeGreaterThanOrEqual(2048);
    });
  }

  it('both services run the same image; the API only enqueues, the worker runs the worker entry point', () => {
    expect(worker.containerDefinitions[0]!.image).toBe(api.containerDefinitions[0]!.image);
    expect(env(api.containerDefinitions[0]!, 'WORKER_CONCURRENCY')).toBe('0');
    expect(Number(env(worker.containerDefinitions[0]!, 'WORKER_CONCURRENCY'))).toBeGreaterThan(0);
    expect(worker.containerDefinitions[0]!.command).toEqual(['node', 'dist/src/worker.js']);
    expect(worker.volumes[0]!.efsVolumeConfiguration!.fileSystemId).toBe(api.volumes[0]!.efsVolumeConfiguration!.fileSystemId);
  });

  it('the API container health check asks / with node, and the port is 8000', () => {
    const container = api.containerDefinitions[0]!;
    expect(container.healthCheck!.command.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
    expect(container.healthCheck!.command[3]).toContain("fetch('http://127.0.0.1:8000/')");
    expect(container.portMappings![0]!.containerPort).toBe(8000);
  });

  it('the worker scales on the queue backlog the workers publish', () => {
    const policy = JSON.parse(read('deploy/ecs/worker.scaling-policy.json')) as { TargetTrackingScalingPolicyConfiguration: { CustomizedMetricSpecification: { Metrics: Array<{ MetricStat?: { Metric: { Namespace: string; MetricName: string } } }> } } };
    const metrics = policy.TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Metrics.map((metric) => metric.MetricStat?.Metric.MetricName);
    expect(metrics).toContain('QueueWaiting');
    const namespaces = policy.TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Metrics.map((metric) => metric.MetricStat?.Metric.Namespace);
    expect(namespaces).toContain('ImageService');
    expect(read('src/worker.ts')).toContain("'ImageService'");
  });
});

interface ComposeService {
  command?: string[];
  environment: Record<string, string>;
  ports?: string[];
  volumes: string[];
  container_name?: string;
  healthcheck: { test: string[] };
  depends_on: Record<string, { condition: string }>;
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
  const { redis, api: apiService, worker: workerService } = compose.services;

  it('runs Redis with append-only persistence and noeviction, with a health check', () => {
    expect((redis!.command ?? []).join(' ')).toMatch(/--appendonly yes/);
    expect((redis!.command ?? []).join(' ')).toMatch(/--maxmemory-policy noeviction/);
    expect(redis!.healthcheck.test).toContain('redis-cli');
  });

  it('runs an API that only enqueues on port 8000 and a scalable worker, sharing one volume', () => {
    expect(apiService!.environment.WORKER_CONCURRENCY).toBe('0');
    expect(apiService!.ports).toContain('8000:8000');
    expect(apiService!.environment.REDIS_URL).toMatch(/^redis:\/\/redis:6379/);
    expect(workerService!.command).toEqual(['node', 'dist/src/worker.js']);
    expect(workerService!.ports).toBeUndefined();
    expect(workerService!.container_name).toBeUndefined();
    const volumeOf = (service: ComposeService) => service.volumes.find((entry) => entry.endsWith(':/data'));
    expect(volumeOf(apiService!)).toBe(volumeOf(workerService!));
    expect(compose.volumes).toHaveProperty(volumeOf(apiService!)!.split(':')[0]!);
  });

  it('waits for a healthy Redis and checks the API with node', () => {
    expect(apiService!.depends_on.redis!.condition).toBe('service_healthy');
    expect(workerService!.depends_on.redis!.condition).toBe('service_healthy');
    expect(apiService!.healthcheck.test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
  });
});

describe('Dockerfile', () => {
  // Continuation lines joined, as Docker reads them.
  const text = read('Dockerfile').replace(/\\\n\s*/g, ' ');
  const froms = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)];

  it('is multi-stage, on a current Node LTS slim image, non-root, with jemalloc preloaded', () => {
    expect(froms.length).toBe(2);
    for (const from of froms) expect(from[1]).toMatch(/^node:(22|24)-slim$/);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/LD_PRELOAD=\/usr\/local\/lib\/libjemalloc\.so\.2/);
    expect(text).toMatch(/libjemalloc2/);
    expect(text).toMatch(/npm prune --omit=dev/);
  });

  it('checks health with node, exposes 8000 and starts node directly', () => {
    expect(text).toMatch(/^HEALTHCHECK .*CMD \["node", "-e", "fetch\(/m);
    expect(text).toMatch(/^EXPOSE 8000$/m);
    expect(text).toMatch(/^CMD \["node", "dist\/src\/server\.js"\]$/m);
    expect(text).not.toMatch(/^CMD .*npm/m);
  });

  it('has a .dockerignore that keeps node_modules, data and tests out of the context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const entry of ['node_modules', 'uploads', 'processed', 'state', 'test', '.git']) expect(ignored).toContain(entry);
  });
});
