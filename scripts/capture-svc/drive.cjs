// Opens page.html in headless Chromium with RTP encryption off and runs
// one loopback call: node drive.cjs VP9|AV1 L3T3_KEY. Prints the offer's
// extmaps/rtpmaps and the sender's and receiver's stats as JSON.
const path = require('path');
const { chromium } = require(path.join(__dirname, '../../e2e/node_modules/playwright-core'));
(async () => {
  const [codec, mode] = process.argv.slice(2);
  const b = await chromium.launch({ executablePath: '/usr/bin/chromium', ignoreDefaultArgs: ['--headless'], args: [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--disable-webrtc-encryption', '--no-first-run', '--disable-background-networking'] });
  const p = await b.newPage();
  p.on('console', m => console.error('console:', m.text()));
  await p.goto('file://' + path.join(__dirname, 'page.html'));
  console.log(JSON.stringify(await p.evaluate(([c, m]) => window.run(c, m), [codec, mode]), null, 1));
  await b.close();
})().catch(e => { console.error(e); process.exit(1); });
