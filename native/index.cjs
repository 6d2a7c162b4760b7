// The built addon, or an error saying why it is not there (capi-ts then uses the wasm backend).
module.exports = require('./build/Release/capi_native.node');
