performer chat --url ws://127.0.0.1:8080/rooms --room lobby --user ann
