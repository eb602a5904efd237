import busboy from 'busboy';
for (const name of ['../../etc/pa\tss\u007fwd.png', '../../etc/passwd.png', 'a\u007fb.png', 'a\tb.png']) {
  const form = new FormData(); form.append('file', new Blob(['x']), name);
  const res = new Response(form); const ct = res.headers.get('content-type')!; const body = Buffer.from(await res.arrayBuffer());
  const bb = busboy({ headers: { 'content-type': ct } });
  await new Promise<void>((r) => { bb.on('file', (_f, s, info) => { console.log(JSON.stringify(name), '->', JSON.stringify(info.filename)); s.resume(); }); bb.on('error', (e) => { console.log(JSON.stringify(name), 'ERR', (e as Error).message); r(); }); bb.on('close', () => r()); bb.end(body); });
}
