// @peculiar/x509 2.x resolves its providers through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
