import { request } from 'node:http';
import { startDemoApp } from '../support/app';
it('peek', async () => {
  const app = await startDemoApp({ JWT_SECRET: 's' });
  const raw = await new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port: app.port, path: '/ws', headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('response', (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => resolve(`${res.statusCode} ${JSON.stringify(res.headers)} ${b}`)); });
    req.on('upgrade', () => resolve('upgraded'));
    req.end();
  });
  console.log(raw);
  await app.close();
});
