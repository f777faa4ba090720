// RFC 8448 §7, Compatibility Mode (legacy_session_id and change_cipher_spec, RFC 8446 §D.4). See README.md.
import { h } from './hex.ts';
import { certificate, encryptedExtensions } from './simple.ts';

export const clientPrivate = h(`de a0 0b 45 69 5d c7 81 f1 9d 34 a6 2c
  1a fd 31 ab 43 69 af 1e 85 5a 3b bb 25 8d 84 42 cd e6 d7`);
export const clientPublic = h(`8e 72 92 cf 30 56 db b0 d2 5f cb e5 5c 10
  7d c9 bb f8 3d d9 70 8f 39 20 3b a3 41 24 9a 7d 9b 63`);
export const clientHelloRecord = h(
  '16030100e0010000dc03034e640a3f2c2738f09c9418bd78edccd7559d0531199276d4d92a0e9ee9d77d0920a80c165581a8e0d06c0018d54d3a06dd32cfd4051eb026fad3fd0ba99269e6ef00061301130313020100008d0000000b0009000006736572766572ff01000100000a00140012001d00170018001901000101010201030104003300260024001d00208e7292cf3056dbb0d25fcbe55c107dc9bbf83dd9708f39203ba341249a7d9b63002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001',
);
export const serverPrivate = h(`01 7c 38 a3 64 79 21 ca 2d 9e d6 bd 7a
  e7 13 2b 94 21 1b 13 31 bb 20 8c 8c cd d5 15 56 40 99 95`);
export const serverPublic = h(`3e 30 f0 f4 ba 55 1a fd 62 76 83 41 17 5f
  52 65 e4 da f0 c8 84 16 17 aa 4f af dd 21 42 32 0c 22`);
export const serverHelloRecord = h(
  '160303007a020000760303e5dd5948c435f7a38f0f0130708dc322d9df09abd4838117c183a7bb6d994f2c20a80c165581a8e0d06c0018d54d3a06dd32cfd4051eb026fad3fd0ba99269e6ef130100002e00330024001d00203e30f0f4ba551afd62768341175f5265e4daf0c8841617aa4fafdd2142320c22002b00020304',
);
export const changeCipherSpecRecord = h('14 03 03 00 01 01');
export const ecdheSecret = h(`ee f7 90 55 90 77 db 5b b6 3b 66 84 e4 16 9f 05
  1e 8f b3 4c e5 9b af ce 2f 9c 8e e6 8c c4 eb 79`);
export const handshakeSecret = h(`f9 17 61 35 4a 67 e9 b0 7c 6d cc 3a 55 70 7e
  fa 69 c4 51 9d 80 40 e5 f2 15 12 1e 0d f6 9a fa 4a`);
export const helloHash = h(`74 5c 55 ba c3 99 31 0b 7b 5a 7c 81 a2 c1 30 b4
  d5 6d ff 6f 68 c3 ab 47 78 57 60 1e 01 f1 f8 d1`);
export const clientHandshakeTrafficSecret = h(`2c 3c b2 4a 10 81 ed b5 95 18 ee 68 61 e8
  9a 6b 72 b3 80 1a fe 77 13 e4 cb bc 21 c0 79 5b f8 31`);
export const serverHandshakeTrafficSecret = h(`ca ce 3d 55 5c c1 c5 77 cf 97 0c ff 28 cf
  97 8d 6a 98 00 08 54 42 e1 8d 69 5b 50 f3 15 1d 18 c8`);
export const masterSecret = h(`62 81 12 da e2 f7 02 48 80 63 e4 2d e6 c8 50
  a5 c0 82 0b 90 90 3e 00 ab c3 18 75 da 03 d4 bc 5b`);
export const serverHandshakeKey = h('04 10 91 fd ab 29 f2 c8 ab fb 15 6d c5 fc 8d 54');
export const serverHandshakeIv = h('74 64 d7 91 68 5d e0 59 98 fc ba db');
export const clientHandshakeKey = h('62 d1 3c 13 ff d7 40 2f c1 c0 9e 3d 16 36 65 cb');
export const clientHandshakeIv = h('71 66 f2 00 28 bf 14 6d cf bd 5a 40');
export const serverFlight = [
  encryptedExtensions,
  certificate,
  h(
    '0f00008408040080a2301a68dd1ceee6938fe9d40c46b9201b34d59952a37e06523a39cf8ba6c9c8b68ae94492af780516ed7b73c82812e99dd3fabea45e09d9c6848721c2808c61501b0c75e7fcaba5f78bef68a2c2b69b19558b3e40387eea93d25c7781c1cc00e9f519f7e2e4adb73e76d66089000a2dc866c2ed30bba50a0d457f19dc6eb9f3',
  ),
  h('14000020c8c3a8f1bff5274061f4bc3a7caffbdc9616094ca625caa65f8e76ed46db74d3'),
];
export const serverFinishedKey = h(`2c 9f 72 f2 7b 81 e7 df 66 8c ac cd 49 37
  1f 12 86 d4 11 e1 6c 8c cc 1c 0d 9a ed 72 cb bd c0 80`);
/** The server's change_cipher_spec then its protected flight, as one write. */
export const serverFlightRecords = h(
  '14030300010117030302a248de891d9c3624a67a6c6f0601ab7ac20c1f6a9e14d2e6007e999e130367a8af1bcfea9498fbce19df4505eece3a25da523cbe55ea1b3bda4e91995e455d500a4faa6227b7111e1c8547e2d7c179db215303d25827f3cd18f48f6491328cf5c0f814d388150bd9e9264aae491db6995069bea17665d5e0c817284d4ac21880054c3657331e23a9304dc88a15c04ec80bd3852bf7f9d3c6615b15fac83bbca031c6d2310d9f5d7a4b020a4f7c19062b65c05a1d3264b557ec9d8e0f7cee27e36f793039de8dd96edfca9009e0651034bff31d7f349eece01d99fcb5fcab840d7707c72299c3b5d04564e880a33c5e846c762e3d922bb55303d1d87cc0f06573f17dcb9b8ffd35bbd883c1cb3aa24fcc325005f768ce2fb624ca97b6c4d98e17f35bc2c7940a06100c2d448db7180b2d862164435c9c210e9860394e05aab23ff1b0203f662c588da5bc4411477a30b41136c488a0a63fcab5c15ac613226dae827a1d1fe95ece6b30bcee1560a8d408d264555e760f9bfc624c2c87fd0456c9bfb41bcd1a7b212786d2b67fd57804facfa1eef7cf2919d8b998c9789f763b4d9caa093a9ded43175d46a76b4d54f0ce0c5d2259b607e30a9d241263874fa59d6f570dc40d83a2d83bf9e9850d454c57806535a8998ae0357df92f00b9667344c24114ccc9ef539124b204e7e6e748c30a28a3d1d183997243eaccbbd33b0c1115a0327106a1e6a75271d4983086f632ff0eb8b4c63102cbcef5bb72dae1279d5de8eb19096d8cdb07fa8ea989788fac23e66e0488c193f3f3fea8c8838896bf3ae4b6848d42ced4bdf41abe6fc331b44225e7a1f7d3564147d5458e71aa909cb02be958bbc42e3aa5a27cc6eaf4b6fe51ae4495694d8ab6320aab920183fd5b31a359042fbd67391ec5e4d1892a2e5210141a494e9301b24a113c474c7f2a73457847',
);
export const serverFinishedHash = h(`07 07 dc ac 7b 2f a4 28 cc 7f 69 16 94 a2 59 0c
  80 6a aa 5c 0c f5 08 7e d5 38 50 12 e7 f9 6c d4`);
export const clientApplicationTrafficSecret = h(`74 3e 4c 6b 56 cf 39 09 d1 b0 6d 01 95 6c
  cd 2c 4b 37 75 84 49 ae c4 1d 98 da e4 49 24 ea a2 99`);
export const serverApplicationTrafficSecret = h(`b6 b8 14 4a a3 35 ed 30 59 c0 c9 c8 f0 ec
  ab f7 af c9 4a f6 64 3b de cd fd 92 10 18 8f ab 74 51`);
export const exporterMasterSecret = h(`fb 69 12 1c ea 33 4d b4 59 e1 22 72 d1 79
  ba ca 23 69 b6 43 d1 1a 6a c7 2b 8b 27 a5 c9 64 fe b1`);
export const serverApplicationKey = h('ed c4 cb d0 04 1c 28 cc 71 67 44 1d 7c a5 3e 6a');
export const serverApplicationIv = h('bf 6c 7d 8e 0a 95 45 b4 27 dc f1 39');
export const clientFlight = [h('14000020692cab155cc6c100ead60733d0617f6fb09b71aa1e8c9accbbbc9e8ed336c1dd')];
export const clientFinishedKey = h(`77 34 1a bc 8c 0f fa b5 18 07 36 71 3e 41
  d2 f6 65 c4 10 a4 04 c8 c2 1e dc d9 48 a4 44 0f d8 0c`);
/** The client's change_cipher_spec then its protected Finished. */
export const clientFlightRecords = h(
  '140303000101170303003532d030e273773a8696c799981af6ced07f87482e81565e394e87c867f33df3d65b7506f1a626af91d4821d5f7a1f210ef8dd3c6d16',
);
export const clientApplicationKey = h('33 d7 f9 70 97 56 c9 66 48 8a d4 43 84 37 e6 73');
export const clientApplicationIv = h('c5 f3 0d 34 b0 e9 1b 7d 6c 8e ea 65');
export const clientFinishedHash = h(`a0 21 d3 a0 5b d4 18 a7 72 81 38 75 ef 79 b0 af
  68 c5 12 32 15 42 7a b7 33 3f 8c 27 72 2a 9f d5`);
export const resumptionMasterSecret = h(`0b 5d 44 07 ce a0 a4 2a 3a 81 dd 47 76 47
  b7 fe 91 80 db 29 7e 51 14 f1 ad 87 96 b4 dc 47 50 04`);
export const clientAlertRecord = h('17 03 03 00 13 0f 62 91 55 38 2d ba 23 c4 e2 c5 f7 f8 4e 6f 2e d3 08 3d');
export const serverAlertRecord = h('17 03 03 00 13 b7 25 7b 0f ec af 69 d4 f0 9e 3f 89 1e 2a 25 d1 e2 88 45');
