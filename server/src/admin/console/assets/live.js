// placeholder: filled by the split of app.js
export {};
