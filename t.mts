import sharp from 'sharp';
const rgba = { raw: { width: 2, height: 1, channels: 4 as const } };
const px = Buffer.from([100, 150, 200, 128, 10, 20, 30, 255]);
try { console.log('modulate 0', await sharp(px, rgba).modulate({brightness: 0}).raw().toBuffer()); } catch (e) { console.log('mod0 fails', (e as Error).message); }
try { console.log('jpeg alpha', (await sharp(px, rgba).jpeg().toBuffer({resolveWithObject:true})).info.channels); } catch (e) { console.log((e as Error).message); }
const bad = Buffer.concat([await sharp({ create: { width: 300, height: 300, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).jpeg().toBuffer()]).subarray(0, 3000);
try { console.log(await sharp(bad).metadata().then(m => [m.width, m.height])); await sharp(bad).resize(10).toBuffer(); console.log('truncated ok?'); } catch (e) { console.log('trunc:', (e as Error).message); }
try { await sharp('/nonexistent/x.png').toBuffer(); } catch (e) { console.log('missing:', (e as Error).message); }
try { await sharp(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')).metadata().then(m => console.log('svg', m.format)); } catch (e) { console.log((e as Error).message); }
